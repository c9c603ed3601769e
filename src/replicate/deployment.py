"""Deployments: a model version on dedicated, autoscaled hardware under a fixed ``owner/name``.

``client.deployments`` lists, gets, creates, updates and deletes deployments;
``client.deployments.predictions.create(deployment, input, ...)`` and
``deployment.predictions.create(input, ...)`` run predictions on one (same contract as every
prediction create: ``wait``, ``cancel_after``, webhooks, file inputs).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote

from typing_extensions import NotRequired, Unpack

from ._http import Operation, json_object_of, returns_true
from .account import Account
from .helpers import async_encode_json as async_encode_json
from .helpers import encode_json as encode_json
from .pagination import Page, _cursor_url, _page_parser
from .prediction import Prediction, Predictions, _async_create, _create
from .resource import Namespace, Resource

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions
    from .client import Client

__all__ = ["Deployment", "DeploymentPredictions", "Deployments", "DeploymentsPredictions"]

_BAD_DEPLOYMENT = (
    "deployment must be a Deployment, a tuple of (owner, name), or a string in the format "
    "'owner/name'"
)
_BAD_NAME = "deployment name must be in the format 'owner/name'"
_CREATE_KEYS = ("name", "model", "version", "hardware", "min_instances", "max_instances")
_UPDATE_KEYS = ("version", "hardware", "min_instances", "max_instances")
_EXTRAS = ("extra_headers", "extra_query", "extra_body")


class Deployment(Resource):
    """A deployment: ``owner``, ``name`` and its ``current_release``."""

    class Release(Resource):
        """A release of a deployment: which version runs, on what configuration."""

        class Configuration(Resource):
            """The hardware and scaling of a release."""

            hardware: str | None = None
            """The hardware SKU, e.g. ``"gpu-t4"``."""
            min_instances: int | None = None
            max_instances: int | None = None

        number: int | None = None
        """The release number (increases with every update)."""
        model: str | None = None
        """The ``owner/name`` of the deployed model."""
        version: str | None = None
        """The id of the deployed version."""
        created_at: str | None = None
        created_by: Account | None = None
        """The account that created the release."""
        configuration: Configuration | None = None

        @classmethod
        def _from_api(cls, data: Any, client: Client | None = None) -> Deployment.Release:
            if isinstance(data, dict):
                data = _nested(data, client, created_by=Account, configuration=cls.Configuration)
            return super()._from_api(data, client)

    owner: str | None = None
    """The owner of the deployment."""
    name: str | None = None
    """The name of the deployment."""
    current_release: Release | None = None
    """The release currently serving predictions."""

    @classmethod
    def _from_api(cls, data: Any, client: Client | None = None) -> Deployment:
        if isinstance(data, dict):
            data = _nested(data, client, current_release=cls.Release)
        return super()._from_api(data, client)

    @property
    def id(self) -> str:
        """``"owner/name"``."""
        return f"{self.owner}/{self.name}"

    @property
    def username(self) -> str | None:
        """Deprecated alias of :attr:`owner`."""
        warnings.warn("Use `deployment.owner` instead.", DeprecationWarning, stacklevel=2)
        return self.owner

    @property
    def predictions(self) -> DeploymentPredictions:
        """Create predictions on this deployment: ``deployment.predictions.create(input)``."""
        return DeploymentPredictions(self._api, self)


# --------------------------------------------------------------------------- helpers


def _nested(
    data: dict[str, Any], client: Client | None, **fields: type[Resource]
) -> dict[str, Any]:
    """``data`` with the named nested objects parsed on their own (tolerantly)."""
    out = dict(data)
    for key, cls in fields.items():
        value = out.get(key)
        if isinstance(value, dict):
            out[key] = cls._from_api(value, client)
    return out


def _deployment_path(owner: Any, name: Any) -> str:
    for what, value in (("deployment owner", owner), ("deployment name", name)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{what} must be a non-empty string, not {value!r}")
    return f"/v1/deployments/{quote(owner, safe='')}/{quote(name, safe='')}"


def _owner_name(deployment: Any) -> tuple[str, str]:
    """``(owner, name)`` of a ``Deployment``, an ``(owner, name)`` tuple or ``"owner/name"``."""
    if isinstance(deployment, Deployment):
        owner, name = deployment.owner, deployment.name
    elif isinstance(deployment, str):
        owner, sep, name = deployment.partition("/")
        if not sep:
            raise ValueError(_BAD_DEPLOYMENT)
    elif isinstance(deployment, tuple) and len(deployment) == 2:
        owner, name = deployment
    else:
        raise ValueError(_BAD_DEPLOYMENT)
    if not isinstance(owner, str) or not isinstance(name, str) or not owner or not name:
        raise ValueError(_BAD_DEPLOYMENT)
    return owner, name


def _parser(client: Client) -> Any:
    return lambda response: Deployment._from_api(json_object_of(response), client)


def _check_keys(params: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [key for key in params if key not in allowed and key not in _EXTRAS]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        accepted = f". Accepted: {', '.join(allowed)}" if allowed else ""
        raise TypeError(
            f"{where}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''}: "
            f"{names}{accepted}"
        )


def _ref(value: Any, key: str) -> Any:
    """Model/Version objects as the strings the API expects (``owner/name``, version id)."""
    kind = type(value).__name__
    if type(value).__module__.startswith("replicate."):
        if key == "model" and kind == "Model":
            return f"{value.owner}/{value.name}"
        if key == "version" and kind == "Version":
            return value.id
    return value


def _with_extras(op: Operation[Any], params: Mapping[str, Any]) -> Operation[Any]:
    return op.with_extras(*(params.get(key) for key in _EXTRAS))


# --------------------------------------------------------------------------- namespaces


class Deployments(Namespace):
    """The ``deployments`` namespace.

    Every method also accepts the keyword-only escape hatches ``extra_headers``, ``extra_query``
    and ``extra_body``.
    """

    class CreateDeploymentParams(TypedDict):
        """Keyword parameters of :meth:`Deployments.create` (all required by the API)."""

        name: str
        model: str
        version: str
        hardware: str
        min_instances: int
        max_instances: int
        extra_headers: NotRequired[Mapping[str, str]]
        extra_query: NotRequired[Mapping[str, Any]]
        extra_body: NotRequired[Mapping[str, Any]]

    class UpdateDeploymentParams(TypedDict, total=False):
        """Keyword parameters of :meth:`Deployments.update` (send only what changes)."""

        version: str
        hardware: str
        min_instances: int
        max_instances: int
        extra_headers: Mapping[str, str]
        extra_query: Mapping[str, Any]
        extra_body: Mapping[str, Any]

    @property
    def predictions(self) -> DeploymentsPredictions:
        """``deployments.predictions.create(deployment, input, ...)``."""
        return DeploymentsPredictions(self._client)

    def list(self, cursor: str | Any = ..., **options: Unpack[RequestOptions]) -> Page[Deployment]:
        """A page of the account's deployments (``GET /v1/deployments``).

        ``cursor`` is the ``next``/``previous`` URL of a previous page; omit it for the first page.
        """
        return self._call(self._list(cursor).with_options(options))

    async def async_list(
        self, cursor: str | Any = ..., **options: Unpack[RequestOptions]
    ) -> Page[Deployment]:
        """Async twin of :meth:`list`."""
        return await self._acall(self._list(cursor).with_options(options))

    def get(
        self, name: str, deployment_name: str | None = None, **options: Unpack[RequestOptions]
    ) -> Deployment:
        """A deployment: ``get("owner/name")`` or ``get(owner, name)``.

        ``GET /v1/deployments/{owner}/{name}``.
        """
        return self._call(self._get(name, deployment_name).with_options(options))

    async def async_get(
        self, name: str, deployment_name: str | None = None, **options: Unpack[RequestOptions]
    ) -> Deployment:
        """Async twin of :meth:`get`."""
        return await self._acall(self._get(name, deployment_name).with_options(options))

    def create(self, **params: Unpack[CreateDeploymentParams]) -> Deployment:
        """Create a deployment (``POST /v1/deployments``).

        Keys: ``name``, ``model`` (``"owner/name"`` or a ``Model``), ``version`` (an id or a
        ``Version``), ``hardware`` (a SKU from ``hardware.list()``), ``min_instances``,
        ``max_instances``. A ``name`` of the form ``"owner/name"`` sends only the part after the
        ``/``. Unknown keys raise :class:`TypeError`.
        """
        return self._call(self._create(dict(params)))

    async def async_create(self, **params: Unpack[CreateDeploymentParams]) -> Deployment:
        """Async twin of :meth:`create`."""
        return await self._acall(self._create(dict(params)))

    def update(
        self,
        deployment_owner: str,
        deployment_name: str,
        **params: Unpack[UpdateDeploymentParams],
    ) -> Deployment:
        """Update a deployment (``PATCH /v1/deployments/{owner}/{name}``).

        Sends exactly the given keys among ``version``, ``hardware``, ``min_instances`` and
        ``max_instances``; each update makes a new release.
        """
        return self._call(self._update(deployment_owner, deployment_name, dict(params)))

    async def async_update(
        self,
        deployment_owner: str,
        deployment_name: str,
        **params: Unpack[UpdateDeploymentParams],
    ) -> Deployment:
        """Async twin of :meth:`update`."""
        return await self._acall(self._update(deployment_owner, deployment_name, dict(params)))

    def delete(
        self, deployment_owner: str, deployment_name: str, **options: Unpack[RequestOptions]
    ) -> bool:
        """Delete a deployment (``DELETE /v1/deployments/{owner}/{name}``); ``True`` on success.

        The API only deletes deployments that have been offline and unused for 15 minutes.
        """
        return self._call(self._delete(deployment_owner, deployment_name).with_options(options))

    async def async_delete(
        self, deployment_owner: str, deployment_name: str, **options: Unpack[RequestOptions]
    ) -> bool:
        """Async twin of :meth:`delete`."""
        return await self._acall(
            self._delete(deployment_owner, deployment_name).with_options(options)
        )

    # ------------------------------------------------------------------ operations

    def _list(self, cursor: Any) -> Operation[Page[Deployment]]:
        path = _cursor_url(self._client, cursor) or "/v1/deployments"
        return Operation("GET", path, parse=_page_parser(Deployment, self._client))

    def _get(self, name: Any, deployment_name: Any) -> Operation[Deployment]:
        if deployment_name is None:
            if not isinstance(name, str):
                raise TypeError(f"name must be a string 'owner/name', not {type(name).__name__}")
            owner, sep, name = name.partition("/")
            if not sep or not owner or not name:
                raise ValueError(_BAD_NAME)
        else:
            owner, name = name, deployment_name
        return Operation("GET", _deployment_path(owner, name), parse=_parser(self._client))

    def _create(self, params: dict[str, Any]) -> Operation[Deployment]:
        _check_keys(params, _CREATE_KEYS, "create")
        body = {key: _ref(value, key) for key, value in params.items() if key not in _EXTRAS}
        name = body.get("name")
        if isinstance(name, str) and "/" in name:
            body["name"] = name.split("/", 1)[1]
        op = Operation("POST", "/v1/deployments", json=body, parse=_parser(self._client))
        return _with_extras(op, params)

    def _update(self, owner: Any, name: Any, params: dict[str, Any]) -> Operation[Deployment]:
        _check_keys(params, _UPDATE_KEYS, "update")
        body = {key: _ref(value, key) for key, value in params.items() if key not in _EXTRAS}
        path = _deployment_path(owner, name)
        return _with_extras(
            Operation("PATCH", path, json=body, parse=_parser(self._client)), params
        )

    def _delete(self, owner: Any, name: Any) -> Operation[bool]:
        return Operation("DELETE", _deployment_path(owner, name), parse=returns_true)


class DeploymentsPredictions(Namespace):
    """``deployments.predictions``: create predictions on a deployment by name."""

    def create(
        self,
        deployment: Deployment | str | tuple[str, str],
        input: dict[str, Any] | None = None,
        **params: Unpack[Predictions.CreatePredictionParams],
    ) -> Prediction:
        """Create a prediction on ``deployment``.

        ``POST /v1/deployments/{owner}/{name}/predictions``. ``deployment`` is a
        :class:`Deployment`, ``(owner, name)`` or ``"owner/name"``; parameters as for every
        prediction create (``wait``, ``cancel_after``, ``webhook``, ``webhook_completed``,
        ``webhook_events_filter``, ``stream``, ``file_encoding_strategy``). Returns the prediction
        as the server sent it.
        """
        return _create(self._client, _predictions_path(deployment), input, params)

    async def async_create(
        self,
        deployment: Deployment | str | tuple[str, str],
        input: dict[str, Any] | None = None,
        **params: Unpack[Predictions.CreatePredictionParams],
    ) -> Prediction:
        """Async twin of :meth:`create`."""
        return await _async_create(self._client, _predictions_path(deployment), input, params)


class DeploymentPredictions(Namespace):
    """``deployment.predictions``: create predictions on one :class:`Deployment`."""

    def __init__(self, client: Client, deployment: Deployment) -> None:
        super().__init__(client)
        self._deployment = deployment

    def create(
        self,
        input: dict[str, Any] | None = None,
        **params: Unpack[Predictions.CreatePredictionParams],
    ) -> Prediction:
        """Create a prediction on this deployment (see :meth:`DeploymentsPredictions.create`)."""
        return _create(self._client, _predictions_path(self._deployment), input, params)

    async def async_create(
        self,
        input: dict[str, Any] | None = None,
        **params: Unpack[Predictions.CreatePredictionParams],
    ) -> Prediction:
        """Async twin of :meth:`create`."""
        return await _async_create(self._client, _predictions_path(self._deployment), input, params)


def _predictions_path(deployment: Any) -> str:
    return _deployment_path(*_owner_name(deployment)) + "/predictions"
