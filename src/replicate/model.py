"""Models: the :class:`Model` resource and the ``models`` namespace with its sub-namespaces
(``predictions``, ``versions``, ``examples``, ``readme``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from typing_extensions import NotRequired

from ._http import Operation, json_object_of, returns_true
from .exceptions import ReplicateException
from .helpers import async_encode_json as async_encode_json
from .helpers import encode_json as encode_json
from .identifier import ModelVersionIdentifier as ModelVersionIdentifier
from .identifier import model_key_from_args, model_owner_name
from .pagination import Page, _cursor_url, _page_parser
from .prediction import Prediction, _async_create, _create
from .resource import Namespace, Resource
from .version import Version, Versions, _model_path

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Unpack

    from ._http import RequestOptions
    from .client import Client

__all__ = [
    "Model",
    "Models",
    "ModelsExamples",
    "ModelsPredictions",
    "ModelsReadme",
    "ModelsVersions",
    "Page",
    "Prediction",
]


class Model(Resource):
    """A model on Replicate."""

    url: str | None = None
    """The model's page on replicate.com."""
    owner: str | None = None
    """The user or organization that owns the model."""
    name: str | None = None
    """The model's name."""
    description: str | None = None
    """A description of the model."""
    visibility: str | None = None
    """``public`` or ``private``."""
    github_url: str | None = None
    """The model's GitHub repository."""
    paper_url: str | None = None
    """The model's paper."""
    license_url: str | None = None
    """The model's license."""
    cover_image_url: str | None = None
    """The model's cover image."""
    run_count: int | None = None
    """How many times the model was run."""
    default_example: Prediction | None = None
    """An example prediction of the model."""
    latest_version: Version | None = None
    """The latest version of the model."""
    is_official: bool | None = None
    """Whether the model is an official model (run by ``owner/name``, priced per output)."""

    @classmethod
    def _from_api(cls, data: Any, client: Client | None = None) -> Model:
        if isinstance(data, dict):
            example = data.get("default_example")
            latest = data.get("latest_version")
            if isinstance(example, dict) or isinstance(latest, dict):
                data = dict(data)
                if isinstance(example, dict):
                    data["default_example"] = Prediction._from_api(example, client)
                if isinstance(latest, dict):
                    data["latest_version"] = Version._from_api(latest, client)
        return super()._from_api(data, client)

    @property
    def id(self) -> str:
        """``"owner/name"``."""
        return f"{self.owner}/{self.name}"

    @property
    def username(self) -> str | None:
        """Deprecated alias of :attr:`owner`."""
        warnings.warn(
            "Model.username is deprecated; use Model.owner", DeprecationWarning, stacklevel=2
        )
        return self.owner

    @username.setter
    def username(self, value: str | None) -> None:
        warnings.warn(
            "Model.username is deprecated; use Model.owner", DeprecationWarning, stacklevel=2
        )
        self.owner = value

    @property
    def versions(self) -> Versions:
        """The versions of this model."""
        return Versions(self._api, self)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Removed: use ``replicate.run()``."""
        raise ReplicateException(
            "The `model.predict()` method has been removed, because it's unstable: if a new "
            "version of the model you're using is pushed and its API has changed, your code may "
            "break. Use `replicate.run()` instead, e.g. "
            "replicate.run('owner/name:version', input={...}) or "
            "replicate.run('owner/name', input={...}) for official models."
        )

    def reload(self) -> Model:
        """Fetch the latest state and replace every field; returns ``self``."""
        client = self._api
        self._replace_from(client._call(_get_operation(client, self._path())))
        return self

    async def async_reload(self) -> Model:
        """Async twin of :meth:`reload`."""
        client = self._api
        updated = await client._acall(_get_operation(client, self._path()))
        self._replace_from(updated)
        return self

    def _path(self) -> str:
        return _model_path(self)


def _model_parser(client: Client) -> Any:
    def parse(response: httpx.Response) -> Model:
        return Model._from_api(json_object_of(response), client)

    return parse


def _get_operation(client: Client, path: str) -> Operation[Model]:
    return Operation("GET", path, parse=_model_parser(client))


def _key_path(args: tuple[Any, ...], key: Any, owner: Any, name: Any) -> str:
    return _model_path(model_key_from_args(args, key, owner, name))


def _text_of(response: httpx.Response) -> str:
    return response.text


class Models(Namespace):
    """The ``models`` namespace."""

    model = Model
    """The resource class of this namespace (1.0.x)."""

    class CreateModelParams(TypedDict):
        """The keyword parameters of :meth:`create` besides ``owner`` and ``name`` (1.0.x name)."""

        visibility: Literal["public", "private"]
        hardware: str
        description: NotRequired[str]
        github_url: NotRequired[str]
        paper_url: NotRequired[str]
        license_url: NotRequired[str]
        cover_image_url: NotRequired[str]

    @cached_property
    def predictions(self) -> ModelsPredictions:
        """Create predictions of official models: ``models.predictions.create("owner/name", ...)``."""
        return ModelsPredictions(self._client)

    @cached_property
    def versions(self) -> ModelsVersions:
        """List, get and delete the versions of a model."""
        return ModelsVersions(self._client)

    @cached_property
    def examples(self) -> ModelsExamples:
        """List the example predictions of a model."""
        return ModelsExamples(self._client)

    @cached_property
    def readme(self) -> ModelsReadme:
        """Get the README of a model."""
        return ModelsReadme(self._client)

    # ------------------------------------------------------------------ get

    def get(
        self,
        *args: str,
        key: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Model:
        """Get a model: ``get("owner/name")``, ``get(owner, name)``, ``get(key=...)`` or
        ``get(owner=..., name=...)``."""
        op = _get_operation(self._client, _key_path(args, key, owner, name))
        return self._call(op.with_options(options))

    async def async_get(
        self,
        *args: str,
        key: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Model:
        """Async twin of :meth:`get`."""
        op = _get_operation(self._client, _key_path(args, key, owner, name))
        return await self._acall(op.with_options(options))

    # ------------------------------------------------------------------ list / search

    def list(
        self,
        cursor: str | None = ...,  # type: ignore[assignment]
        *,
        sort_by: Literal["model_created_at", "latest_version_created_at"] | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        **options: Unpack[RequestOptions],
    ) -> Page[Model]:
        """List public models."""
        op = self._list(cursor, sort_by, sort_direction)
        return self._call(op.with_options(options))

    async def async_list(
        self,
        cursor: str | None = ...,  # type: ignore[assignment]
        *,
        sort_by: Literal["model_created_at", "latest_version_created_at"] | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        **options: Unpack[RequestOptions],
    ) -> Page[Model]:
        """Async twin of :meth:`list`."""
        op = self._list(cursor, sort_by, sort_direction)
        return await self._acall(op.with_options(options))

    def _list(self, cursor: Any, sort_by: Any, sort_direction: Any) -> Operation[Page[Model]]:
        url = _cursor_url(self._client, cursor)
        query: dict[str, Any] = {}
        if url is None:
            url = "/v1/models"
            if sort_by is not None:
                query["sort_by"] = sort_by
            if sort_direction is not None:
                query["sort_direction"] = sort_direction
        return Operation("GET", url, parse=_page_parser(Model, self._client), params=query or None)

    def search(
        self,
        query: str,
        *,
        cursor: str | None = ...,  # type: ignore[assignment]
        **options: Unpack[RequestOptions],
    ) -> Page[Model]:
        """Search public models (``QUERY /v1/models`` with the query as plain text)."""
        op = self._search(query, cursor, options.get("extra_body"))
        return self._call(op.with_options(options))

    async def async_search(
        self,
        query: str,
        *,
        cursor: str | None = ...,  # type: ignore[assignment]
        **options: Unpack[RequestOptions],
    ) -> Page[Model]:
        """Async twin of :meth:`search`."""
        op = self._search(query, cursor, options.get("extra_body"))
        return await self._acall(op.with_options(options))

    def _search(
        self, query: str, cursor: Any, extra_body: Mapping[str, Any] | None = None
    ) -> Operation[Page[Model]]:
        if extra_body:
            raise TypeError("extra_body cannot be used with search: its body is the query text")
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, not {type(query).__name__}")
        url = _cursor_url(self._client, cursor) or "/v1/models"
        return Operation(
            "QUERY",
            url,
            parse=_page_parser(Model, self._client),
            content=query.encode("utf-8"),
            headers={"Content-Type": "text/plain"},
        )

    # ------------------------------------------------------------------ create / update / delete

    def create(
        self,
        owner: str,
        name: str,
        *,
        visibility: Literal["public", "private"],
        hardware: str,
        description: str | None = None,
        github_url: str | None = None,
        paper_url: str | None = None,
        license_url: str | None = None,
        cover_image_url: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Model:
        """Create a model (``visibility`` and ``hardware`` are required)."""
        op = self._create(
            owner,
            name,
            visibility,
            hardware,
            description,
            github_url,
            paper_url,
            license_url,
            cover_image_url,
        )
        return self._call(op.with_options(options))

    async def async_create(
        self,
        owner: str,
        name: str,
        *,
        visibility: Literal["public", "private"],
        hardware: str,
        description: str | None = None,
        github_url: str | None = None,
        paper_url: str | None = None,
        license_url: str | None = None,
        cover_image_url: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Model:
        """Async twin of :meth:`create`."""
        op = self._create(
            owner,
            name,
            visibility,
            hardware,
            description,
            github_url,
            paper_url,
            license_url,
            cover_image_url,
        )
        return await self._acall(op.with_options(options))

    def _create(
        self,
        owner: str,
        name: str,
        visibility: str,
        hardware: str,
        description: str | None,
        github_url: str | None,
        paper_url: str | None,
        license_url: str | None,
        cover_image_url: str | None,
    ) -> Operation[Model]:
        body: dict[str, Any] = {
            "owner": owner,
            "name": name,
            "visibility": visibility,
            "hardware": hardware,
        }
        optional = {
            "description": description,
            "github_url": github_url,
            "paper_url": paper_url,
            "license_url": license_url,
            "cover_image_url": cover_image_url,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return Operation("POST", "/v1/models", parse=_model_parser(self._client), json=body)

    def update(
        self,
        *args: str,
        key: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        description: str | None = None,
        readme: str | None = None,
        github_url: str | None = None,
        paper_url: str | None = None,
        license_url: str | None = None,
        weights_url: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Model:
        """Update a model's metadata (only the given fields are sent)."""
        op = self._update(
            args, key, owner, name, description, readme, github_url, paper_url, license_url,
            weights_url,
        )  # fmt: skip
        return self._call(op.with_options(options))

    async def async_update(
        self,
        *args: str,
        key: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        description: str | None = None,
        readme: str | None = None,
        github_url: str | None = None,
        paper_url: str | None = None,
        license_url: str | None = None,
        weights_url: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Model:
        """Async twin of :meth:`update`."""
        op = self._update(
            args, key, owner, name, description, readme, github_url, paper_url, license_url,
            weights_url,
        )  # fmt: skip
        return await self._acall(op.with_options(options))

    def _update(
        self,
        args: tuple[Any, ...],
        key: Any,
        owner: Any,
        name: Any,
        description: str | None,
        readme: str | None,
        github_url: str | None,
        paper_url: str | None,
        license_url: str | None,
        weights_url: str | None,
    ) -> Operation[Model]:
        path = _key_path(args, key, owner, name)
        fields = {
            "description": description,
            "readme": readme,
            "github_url": github_url,
            "paper_url": paper_url,
            "license_url": license_url,
            "weights_url": weights_url,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return Operation("PATCH", path, parse=_model_parser(self._client), json=body)

    def delete(
        self,
        *args: str,
        key: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> bool:
        """Delete a model (the API only allows private models without versions). Returns ``True``."""
        op = Operation("DELETE", _key_path(args, key, owner, name), parse=returns_true)
        return self._call(op.with_options(options))

    async def async_delete(
        self,
        *args: str,
        key: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> bool:
        """Async twin of :meth:`delete`."""
        op = Operation("DELETE", _key_path(args, key, owner, name), parse=returns_true)
        return await self._acall(op.with_options(options))


class ModelsPredictions(Namespace):
    """``models.predictions``: create predictions by model name (official models)."""

    def create(
        self,
        model: Model | str | tuple[str, str],
        input: dict[str, Any] | None = None,
        **params: Any,
    ) -> Prediction:
        """Create a prediction of ``model`` (``POST /v1/models/{owner}/{name}/predictions``).

        ``params``: see :class:`~replicate.prediction.Predictions.CreatePredictionParams`.
        """
        return _create(self._client, self._path(model), input, params)

    async def async_create(
        self,
        model: Model | str | tuple[str, str],
        input: dict[str, Any] | None = None,
        **params: Any,
    ) -> Prediction:
        """Async twin of :meth:`create`."""
        return await _async_create(self._client, self._path(model), input, params)

    @staticmethod
    def _path(model: Any) -> str:
        return _model_path(model_owner_name(model)) + "/predictions"


class ModelsVersions(Namespace):
    """``models.versions``: list, get and delete the versions of a model."""

    def list(
        self,
        model: Model | str | tuple[str, str],
        *,
        cursor: str | None = ...,  # type: ignore[assignment]
        **options: Unpack[RequestOptions],
    ) -> Page[Version]:
        """List the versions of ``model``, newest first."""
        return self._versions(model).list(cursor, **options)

    async def async_list(
        self,
        model: Model | str | tuple[str, str],
        *,
        cursor: str | None = ...,  # type: ignore[assignment]
        **options: Unpack[RequestOptions],
    ) -> Page[Version]:
        """Async twin of :meth:`list`."""
        return await self._versions(model).async_list(cursor, **options)

    def get(
        self,
        model: Model | str | tuple[str, str],
        version_id: str,
        **options: Unpack[RequestOptions],
    ) -> Version:
        """Get one version of ``model``."""
        return self._versions(model).get(version_id, **options)

    async def async_get(
        self,
        model: Model | str | tuple[str, str],
        version_id: str,
        **options: Unpack[RequestOptions],
    ) -> Version:
        """Async twin of :meth:`get`."""
        return await self._versions(model).async_get(version_id, **options)

    def delete(
        self,
        model: Model | str | tuple[str, str],
        version_id: str,
        **options: Unpack[RequestOptions],
    ) -> bool:
        """Delete one version of ``model`` (the API answers 202). Returns ``True``."""
        return self._versions(model).delete(version_id, **options)

    async def async_delete(
        self,
        model: Model | str | tuple[str, str],
        version_id: str,
        **options: Unpack[RequestOptions],
    ) -> bool:
        """Async twin of :meth:`delete`."""
        return await self._versions(model).async_delete(version_id, **options)

    def _versions(self, model: Any) -> Versions:
        return Versions(self._client, model_owner_name(model))


class ModelsExamples(Namespace):
    """``models.examples``: the example predictions of a model."""

    def list(
        self,
        model: Model | str | tuple[str, str],
        *,
        cursor: str | None = ...,  # type: ignore[assignment]
        **options: Unpack[RequestOptions],
    ) -> Page[Prediction]:
        """List the example predictions of ``model``."""
        op = self._list(model, cursor)
        return self._call(op.with_options(options))

    async def async_list(
        self,
        model: Model | str | tuple[str, str],
        *,
        cursor: str | None = ...,  # type: ignore[assignment]
        **options: Unpack[RequestOptions],
    ) -> Page[Prediction]:
        """Async twin of :meth:`list`."""
        op = self._list(model, cursor)
        return await self._acall(op.with_options(options))

    def _list(self, model: Any, cursor: Any) -> Operation[Page[Prediction]]:
        path = _model_path(model_owner_name(model)) + "/examples"
        url = _cursor_url(self._client, cursor) or path
        return Operation("GET", url, parse=_page_parser(Prediction, self._client))


class ModelsReadme(Namespace):
    """``models.readme``: the README (Markdown) of a model."""

    def get(
        self,
        *args: str,
        key: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> str:
        """The README of a model as Markdown text (404 → ``NotFoundError``)."""
        op = self._get(args, key, owner, name)
        return self._call(op.with_options(options))

    async def async_get(
        self,
        *args: str,
        key: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> str:
        """Async twin of :meth:`get`."""
        op = self._get(args, key, owner, name)
        return await self._acall(op.with_options(options))

    def _get(self, args: tuple[Any, ...], key: Any, owner: Any, name: Any) -> Operation[str]:
        if len(args) == 1 and not isinstance(args[0], str):
            path = _model_path(model_owner_name(args[0]))
        else:
            path = _key_path(args, key, owner, name)
        return Operation("GET", path + "/readme", parse=_text_of)
