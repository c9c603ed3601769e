"""Trainings: fine-tune a model version into a destination model.

``client.trainings.create(...)`` accepts every form of replicate-python 1.0.x (docs/api.md, "Creating a training"), in
sync and async code alike::

    trainings.create("owner/name:version_id", input, "dest-owner/dest-name")   # legacy positional
    trainings.create(version="owner/name:version_id", input=..., destination=...)
    trainings.create("owner/name", "version_id", {...}, destination=...)        # model + version
    trainings.create(model=model, version=version, input=..., destination=...)
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict
from urllib.parse import quote

from typing_extensions import NotRequired, Unpack

from . import _polling
from ._http import IDEMPOTENT_EXTENSION, Operation, json_object_of
from .helpers import async_encode_json, encode_json
from .identifier import ModelVersionIdentifier as ModelVersionIdentifier
from .identifier import model_owner_name
from .model import Model as Model
from .pagination import Page, _cursor_url, _page_parser
from .resource import Namespace, Resource
from .version import Version as Version

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions
    from .client import Client
    from .file import FileEncodingStrategy

__all__ = ["Training", "Trainings"]


class Training(Resource):
    """A training job. ``output`` holds ``{"version": ..., "weights": ...}`` once it succeeded."""

    TERMINAL_STATUSES: ClassVar[frozenset[str]] = _polling.TERMINAL_STATUSES
    """The statuses after which a training never changes again."""

    id: str | None = None
    model: str | None = None
    """The ``owner/name`` of the model that was trained."""
    version: str | None = None
    """The id of the version that was trained."""
    destination: str | None = None
    """``owner/name`` of the destination model (derived from ``output["version"]`` when absent)."""
    status: str | None = None
    """``starting``, ``processing``, ``succeeded``, ``failed``, ``canceled`` or ``aborted``."""
    input: dict[str, Any] | None = None
    output: Any = None
    logs: str | None = None
    error: Any = None
    metrics: dict[str, Any] | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    urls: dict[str, Any] | None = None
    source: str | None = None

    def model_post_init(self, context: Any, /) -> None:
        if self.destination is None and isinstance(self.output, dict):
            version = self.output.get("version")
            if isinstance(version, str):
                ref, sep, version_id = version.partition(":")
                owner, slash, name = ref.partition("/")
                if sep and version_id and slash and owner and name and "/" not in name:
                    self.__dict__["destination"] = ref

    @property
    def is_terminal(self) -> bool:
        """Whether the training is done (a terminal status, or an unknown one with ``completed_at``)."""
        return _polling.is_terminal(self.status, self.completed_at)

    def reload(self) -> Training:
        """Refresh every field from the API (``GET /v1/trainings/{id}``); returns ``self``."""
        self._replace_from(self._api._call(_get(self._api, _id_of(self))))
        return self

    async def async_reload(self) -> Training:
        """Async twin of :meth:`reload`."""
        fresh: Training = await self._api._acall(_get(self._api, _id_of(self)))
        self._replace_from(fresh)
        return self

    def cancel(self) -> Training:
        """Cancel the training (``POST /v1/trainings/{id}/cancel``); updates and returns ``self``."""
        self._replace_from(self._api._call(_cancel(self._api, _id_of(self))))
        return self

    async def async_cancel(self) -> Training:
        """Async twin of :meth:`cancel`."""
        fresh: Training = await self._api._acall(_cancel(self._api, _id_of(self)))
        self._replace_from(fresh)
        return self

    def wait(self, timeout: float | None = None, *, poll_interval: float | None = None) -> Training:
        """Poll until the training is terminal; returns ``self``.

        Does not raise for ``failed``/``canceled``/``aborted``. Raises
        :class:`~replicate.exceptions.PredictionTimeoutError` when ``timeout`` seconds pass first
        (the training keeps running). ``poll_interval`` defaults to the client's.
        """
        return _wait(self._api, self, timeout, poll_interval)

    async def async_wait(
        self, timeout: float | None = None, *, poll_interval: float | None = None
    ) -> Training:
        """Async twin of :meth:`wait`."""
        return await _async_wait(self._api, self, timeout, poll_interval)


class Trainings(Namespace):
    """The ``trainings`` namespace.

    Every method also accepts the keyword-only escape hatches ``extra_headers``, ``extra_query``
    and ``extra_body``.
    """

    class CreateTrainingParams(TypedDict):
        """Keyword parameters of :meth:`Trainings.create`."""

        destination: NotRequired[str | tuple[str, str] | Model]
        webhook: NotRequired[str]
        webhook_completed: NotRequired[str]
        webhook_events_filter: NotRequired[list[str]]
        file_encoding_strategy: NotRequired[FileEncodingStrategy]
        extra_headers: NotRequired[Mapping[str, str]]
        extra_query: NotRequired[Mapping[str, Any]]
        extra_body: NotRequired[Mapping[str, Any]]

    def list(self, cursor: str | Any = ..., **options: Unpack[RequestOptions]) -> Page[Training]:
        """A page of trainings, most recent first (``GET /v1/trainings``; 100 per page).

        ``cursor`` is the ``next``/``previous`` URL of a previous page; omit it for the first page.
        """
        return self._call(self._list(cursor).with_options(options))

    async def async_list(
        self, cursor: str | Any = ..., **options: Unpack[RequestOptions]
    ) -> Page[Training]:
        """Async twin of :meth:`list`."""
        return await self._acall(self._list(cursor).with_options(options))

    def get(self, id: str, **options: Unpack[RequestOptions]) -> Training:
        """A training by id (``GET /v1/trainings/{id}``)."""
        return self._call(_get(self._client, id).with_options(options))

    async def async_get(self, id: str, **options: Unpack[RequestOptions]) -> Training:
        """Async twin of :meth:`get`."""
        return await self._acall(_get(self._client, id).with_options(options))

    def cancel(self, id: str, **options: Unpack[RequestOptions]) -> Training:
        """Cancel a training (``POST /v1/trainings/{id}/cancel``)."""
        return self._call(_cancel(self._client, id).with_options(options))

    async def async_cancel(self, id: str, **options: Unpack[RequestOptions]) -> Training:
        """Async twin of :meth:`cancel`."""
        return await self._acall(_cancel(self._client, id).with_options(options))

    def create(
        self,
        *args: Any,
        model: str | tuple[str, str] | Model | None = None,
        version: str | Version | None = None,
        input: dict[str, Any] | None = None,
        **params: Unpack[CreateTrainingParams],
    ) -> Training:
        """Start a training (``POST /v1/models/{owner}/{name}/versions/{version_id}/trainings``).

        Forms: ``create("owner/name:version_id", input, destination, webhook, webhook_completed,
        webhook_events_filter)``; ``create(version="owner/name:version_id", input=...,
        destination=...)``; ``create(model, version, input, destination=...)`` where ``model`` is a
        ``Model``, ``(owner, name)`` or ``"owner/name"`` and ``version`` a version id or
        ``Version``. ``destination`` (required) is a ``Model``, ``(owner, name)`` or
        ``"owner/name"``. Files in ``input`` are uploaded (or inlined with
        ``file_encoding_strategy="base64"``). Unknown parameters raise :class:`TypeError`.
        """
        plan = _plan(args, model, version, input, dict(params))
        return self._call(plan.operation(self._client, encode_json(*plan.encode(self._client))))

    async def async_create(
        self,
        *args: Any,
        model: str | tuple[str, str] | Model | None = None,
        version: str | Version | None = None,
        input: dict[str, Any] | None = None,
        **params: Unpack[CreateTrainingParams],
    ) -> Training:
        """Async twin of :meth:`create` (accepts the same forms)."""
        plan = _plan(args, model, version, input, dict(params))
        encoded = await async_encode_json(*plan.encode(self._client))
        return await self._acall(plan.operation(self._client, encoded))

    def wait(
        self,
        training: str | Training,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
    ) -> Training:
        """Poll a training (an id or a :class:`Training`) until it is terminal and return it.

        A ``Training`` object is updated in place. See :meth:`Training.wait`.
        """
        if not isinstance(training, Training):
            _wait_settings(self._client, timeout, poll_interval)  # argument errors first
            if not isinstance(training, str):
                raise TypeError(f"training must be a Training or an id, not {training!r}")
            training = self.get(training)
        return _wait(self._client, training, timeout, poll_interval)

    async def async_wait(
        self,
        training: str | Training,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
    ) -> Training:
        """Async twin of :meth:`wait`."""
        if not isinstance(training, Training):
            _wait_settings(self._client, timeout, poll_interval)  # argument errors first
            if not isinstance(training, str):
                raise TypeError(f"training must be a Training or an id, not {training!r}")
            training = await self.async_get(training)
        return await _async_wait(self._client, training, timeout, poll_interval)

    def _list(self, cursor: Any) -> Operation[Page[Training]]:
        path = _cursor_url(self._client, cursor) or "/v1/trainings"
        return Operation("GET", path, parse=_page_parser(Training, self._client))


# --------------------------------------------------------------------------- operations


def _parser(client: Client) -> Any:
    return lambda response: Training._from_api(json_object_of(response), client)


def _training_path(id: Any) -> str:
    if not isinstance(id, str) or not id:
        raise ValueError(f"training id must be a non-empty string, not {id!r}")
    return f"/v1/trainings/{quote(id, safe='')}"


def _id_of(training: Training) -> str:
    if not training.id:
        raise ValueError("This training has no id: it was not returned by the API")
    return training.id


def _get(client: Client, id: str) -> Operation[Training]:
    return Operation("GET", _training_path(id), parse=_parser(client))


def _cancel(client: Client, id: str) -> Operation[Training]:
    return Operation(
        "POST",
        _training_path(id) + "/cancel",
        parse=_parser(client),
        extensions={IDEMPOTENT_EXTENSION: True},
    )


# --------------------------------------------------------------------------- create

_PARAMS = ("destination", "webhook", "webhook_completed", "webhook_events_filter")
_EXTRAS = ("extra_headers", "extra_query", "extra_body")
_ALLOWED = frozenset((*_PARAMS, "file_encoding_strategy", *_EXTRAS))
_LEGACY_POSITIONAL = ("input", *_PARAMS)
_VERSION_REQUIRED = "A version is required: use 'owner/name:version_id' or pass version="
_NO_TARGET = "model and version or shorthand version must be specified"
_NO_DESTINATION = "A destination must be provided as a positional or keyword argument."


@dataclass
class _CreatePlan:
    """A validated training create, waiting only for its input to be encoded."""

    owner: str
    name: str
    version_id: str
    input: Any
    params: dict[str, Any]

    def encode(self, client: Client) -> tuple[Any, Client, Any]:
        """Arguments for ``encode_json`` / ``async_encode_json``."""
        return (
            {} if self.input is None else self.input,
            client,
            self.params.get("file_encoding_strategy"),
        )

    def operation(self, client: Client, encoded_input: Any) -> Operation[Training]:
        body: dict[str, Any] = {"input": encoded_input}
        for key in _PARAMS:
            if self.params.get(key) is not None:
                body[key] = self.params[key]
        path = (
            f"/v1/models/{quote(self.owner, safe='')}/{quote(self.name, safe='')}"
            f"/versions/{quote(self.version_id, safe='')}/trainings"
        )
        return Operation("POST", path, json=body, parse=_parser(client)).with_extras(
            *(self.params.get(key) for key in _EXTRAS)
        )


def _is_version(value: Any) -> bool:
    return type(value).__name__ == "Version" and type(value).__module__.startswith("replicate")


def _version_id(version: Any) -> str:
    if _is_version(version):
        version = getattr(version, "id", None)
    if not isinstance(version, str) or not version:
        raise ValueError(_VERSION_REQUIRED)
    return version


def _split_shorthand(ref: str) -> tuple[str, str, str]:
    """``"owner/name:version_id"`` → ``(owner, name, version_id)``."""
    model_ref, sep, version_id = ref.partition(":")
    if not sep or not version_id:
        raise ValueError(_VERSION_REQUIRED)
    owner, name = model_owner_name(model_ref)
    return owner, name, version_id


def _destination(value: Any) -> str:
    if isinstance(value, str):
        if not value:
            raise ValueError("destination must not be empty")
        return value  # sent verbatim: the API validates it
    try:
        owner, name = model_owner_name(value)
    except ValueError:
        raise ValueError(
            "destination must be a Model, a tuple of (owner, name), or a string in the format "
            "'owner/name'"
        ) from None
    return f"{owner}/{name}"


def _merge(params: dict[str, Any], key: str, value: Any) -> None:
    if key in params:
        raise TypeError(f"create() got multiple values for argument '{key}'")
    params[key] = value


def _plan(
    args: tuple[Any, ...], model: Any, version: Any, input: Any, params: dict[str, Any]
) -> _CreatePlan:
    unknown = [key for key in params if key not in _ALLOWED]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        raise TypeError(f"create() got unexpected keyword argument(s): {names}")
    if args and isinstance(args[0], str) and ":" in args[0]:
        # Legacy positional form: (ref, input, destination, webhook, webhook_completed, filter).
        if len(args) > 1 + len(_LEGACY_POSITIONAL):
            raise TypeError(
                f"create() takes at most {1 + len(_LEGACY_POSITIONAL)} positional arguments "
                f"in the 'owner/name:version_id' form ({len(args)} given)"
            )
        if model is not None or version is not None:
            raise TypeError(
                "create() got both a positional 'owner/name:version_id' and model=/version="
            )
        owner, name, version_id = _split_shorthand(args[0])
        values = dict(zip(_LEGACY_POSITIONAL, args[1:], strict=False))
        if "input" in values:
            if input is not None:
                raise TypeError("create() got multiple values for argument 'input'")
            input = values.pop("input")
        for key, value in values.items():
            _merge(params, key, value)
    else:
        if len(args) > 3:
            raise TypeError(
                f"create() takes at most 3 positional arguments (model, version, input) "
                f"({len(args)} given)"
            )
        for key, value in zip(("model", "version", "input"), args, strict=False):
            current = {"model": model, "version": version, "input": input}[key]
            if current is not None:
                raise TypeError(f"create() got multiple values for argument '{key}'")
            if key == "model":
                model = value
            elif key == "version":
                version = value
            else:
                input = value
        if model is not None:
            owner, name = model_owner_name(model)
            version_id = _version_id(version)
        elif isinstance(version, str):
            owner, name, version_id = _split_shorthand(version)
        else:
            raise ValueError(_NO_TARGET)
    if input is not None and not isinstance(input, Mapping):
        raise TypeError(f"input must be a dict, not {type(input).__name__}")
    if params.get("destination") is None:
        raise ValueError(_NO_DESTINATION)
    params["destination"] = _destination(params["destination"])
    return _CreatePlan(owner, name, version_id, input, params)


# --------------------------------------------------------------------------- waiting


def _wait_settings(client: Client, timeout: Any, poll_interval: Any) -> tuple[float | None, float]:
    seconds = _polling.check_timeout(timeout)
    interval = _polling.check_poll_interval(poll_interval)
    return seconds, client.poll_interval if interval is None else interval


def _wait_steps(
    client: Client, training: Training, timeout: Any, poll_interval: Any
) -> Generator[tuple[int, Any], Any, None]:
    from .prediction import _poll_steps

    seconds, interval = _wait_settings(client, timeout, poll_interval)
    deadline = _polling.deadline_after(seconds)
    return _poll_steps(
        client,
        training,
        interval,
        deadline,
        seconds,
        items=False,
        fetch=lambda t: _get(client, _id_of(t)),
    )


def _wait(client: Client, training: Training, timeout: Any, poll_interval: Any) -> Training:
    from .prediction import _drive

    for _ in _drive(client, _wait_steps(client, training, timeout, poll_interval)):
        pass
    return training


async def _async_wait(
    client: Client, training: Training, timeout: Any, poll_interval: Any
) -> Training:
    from .prediction import _adrive

    async for _ in _adrive(client, _wait_steps(client, training, timeout, poll_interval)):
        pass
    return training
