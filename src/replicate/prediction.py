"""Predictions: the :class:`Prediction` resource, the ``predictions`` namespace, and the shared
prediction-create contract (docs/predictions.md).

The create contract is used by ``predictions.create``, ``models.predictions.create``,
``deployments.predictions.create``, ``run`` and ``stream``. Its pieces:

* :func:`_check_create_params` validates the keyword parameters (unknown → ``TypeError``; bad
  ``wait``/``cancel_after``/``file_encoding_strategy`` → ``ValueError``/``TypeError``) before any I/O;
* :func:`_encode_input` / :func:`_async_encode_input` encode the input (file uploads happen here);
* :func:`_create_operation` builds the :class:`~replicate._http.Operation` (body, ``Prefer``,
  ``Cancel-After``, read timeout, escape hatches); the returned :class:`Prediction` remembers
  whether the response was *sync-complete* (``prediction._sync_complete``; docs/predictions.md, "The sync-complete rule");
* :func:`_create` / :func:`_async_create` chain the three.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import re
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict, cast
from urllib.parse import quote

import httpx
from pydantic import PrivateAttr, ValidationError

from . import _polling
from ._http import (
    DEADLINE_EXTENSION,
    IDEMPOTENT_EXTENSION,
    Operation,
    json_object_of,
    with_min_read,
)
from .exceptions import (
    ModelError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionTimeoutError,
    ReplicateError,
)
from .file import FileEncodingStrategy as FileEncodingStrategy
from .helpers import async_encode_json as async_encode_json
from .helpers import encode_json as encode_json
from .pagination import Page, _cursor_url, _page_parser
from .resource import Namespace, Resource
from .version import Version as Version

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._http import RequestOptions
    from .client import Client
    from .stream import ServerSentEvent

__all__ = ["Prediction", "Predictions"]


def __getattr__(name: str) -> Any:
    # ``replicate.prediction.EventSource`` (a 1.0.x import path), loaded when asked for: the
    # stream layer sits above this module.
    if name == "EventSource":
        from .stream import EventSource

        return EventSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_PROGRESS = re.compile(r"^\s*(\d+)%\s*\|.+?\|\s*(\d+)/(\d+)")

CREATE_PARAMS = frozenset(
    {
        "wait",
        "cancel_after",
        "webhook",
        "webhook_completed",
        "webhook_events_filter",
        "stream",
        "file_encoding_strategy",
        "extra_headers",
        "extra_query",
        "extra_body",
    }
)
_BODY_PARAMS = ("webhook", "webhook_completed", "webhook_events_filter", "stream")
_FILE_ENCODING_STRATEGIES = (None, "url", "base64")


class CreatePredictionRequestParams(TypedDict, total=False):
    """Per-request options of a create (the 1.0.x name): extra ``headers`` and a ``timeout``."""

    headers: dict[str, str]
    timeout: float | None


class Prediction(Resource):
    """A prediction: one run of a model on one input.

    ``output`` is the raw JSON the API sent (use ``replicate.helpers.transform_output`` or
    ``run()`` for :class:`~replicate.helpers.FileOutput` objects).
    """

    @dataclass
    class Progress:
        """The progress of a prediction, parsed from tqdm-style lines in its logs."""

        percentage: float
        """The fraction done, between 0 and 1."""
        current: int
        """The number of steps done."""
        total: int
        """The total number of steps."""

        @classmethod
        def parse(cls, logs: str) -> Prediction.Progress | None:
            """The progress of the last log line that looks like a tqdm bar, else ``None``."""
            if not logs:
                return None
            for line in reversed(logs.split("\n")):
                match = _PROGRESS.match(line.strip())
                if match:
                    percentage, current, total = (int(g) for g in match.groups())
                    return cls(percentage / 100.0, current, total)
            return None

    TERMINAL_STATUSES: ClassVar[frozenset[str]] = _polling.TERMINAL_STATUSES
    """The statuses after which a prediction never changes."""

    id: str | None = None
    """The id of the prediction."""
    model: str | None = None
    """The model, as ``owner/name``."""
    version: str | None = None
    """The version id (``"hidden"`` for official models, or another opaque id)."""
    status: str | None = None
    """``starting``, ``processing``, ``succeeded``, ``failed``, ``canceled``, ``aborted`` (or a newer value)."""
    input: dict[str, Any] | None = None
    """The input of the prediction."""
    output: Any = None
    """The raw JSON output."""
    logs: str | None = None
    """The logs so far."""
    error: Any = None
    """The error message of a failed prediction."""
    metrics: dict[str, Any] | None = None
    """Metrics such as ``predict_time`` and ``total_time``."""
    created_at: str | None = None
    """When the prediction was created (ISO 8601)."""
    started_at: str | None = None
    """When the prediction started (ISO 8601)."""
    completed_at: str | None = None
    """When the prediction completed (ISO 8601)."""
    urls: dict[str, Any] | None = None
    """API URLs: ``get``, ``cancel``, ``web`` and, for streaming models, ``stream``."""
    data_removed: bool | None = None
    """Whether the input/output data were removed (about an hour after completion)."""
    deadline: str | None = None
    """When the prediction will be canceled (from ``Cancel-After``)."""
    deployment: str | None = None
    """The deployment that ran the prediction, as ``owner/name``."""
    source: str | None = None
    """``api`` or ``web``."""

    _sync_complete: bool = PrivateAttr(default=False)

    @classmethod
    def _from_api(cls, data: Any, client: Client | None = None) -> Prediction:
        # Fast path: a prediction holds no nested resources, so binding is one private write.
        if type(data) is dict and cls is Prediction:
            try:
                obj = _VALIDATOR.validate_python(data)
            except ValidationError:
                return super()._from_api(data, client)
            _set_client(obj, client)
            return obj
        return super()._from_api(data, client)

    @classmethod
    def _from_response(cls, response: httpx.Response, client: Client | None) -> Prediction:
        """Parse a response body straight from JSON bytes (the hot path of ``predictions.get``)."""
        if cls is Prediction:
            try:
                obj = _VALIDATOR.validate_json(response.content)
            except ValidationError:
                pass  # not a JSON object, or unexpected types: the tolerant path decides
            else:
                _set_client(obj, client)
                return obj
        return cls._from_api(json_object_of(response), client)

    @property
    def is_terminal(self) -> bool:
        """Whether the prediction has finished (an unknown status counts once ``completed_at`` is set)."""
        return _polling.is_terminal(self.status, self.completed_at)

    @property
    def progress(self) -> Prediction.Progress | None:
        """The progress parsed from the logs, or ``None``."""
        logs = self.logs
        if not logs or not isinstance(logs, str):
            return None
        return Prediction.Progress.parse(logs)

    # ------------------------------------------------------------------ I/O

    def wait(
        self, timeout: float | None = None, *, poll_interval: float | None = None
    ) -> Prediction:
        """Poll until the prediction finishes; returns ``self``.

        Does not raise for ``failed``/``canceled``/``aborted``. Raises
        :class:`~replicate.exceptions.PredictionTimeoutError` when ``timeout`` seconds pass first
        (the prediction keeps running).
        """
        return _wait(self._api, self, timeout, poll_interval)

    async def async_wait(
        self, timeout: float | None = None, *, poll_interval: float | None = None
    ) -> Prediction:
        """Async twin of :meth:`wait`."""
        return await _async_wait(self._api, self, timeout, poll_interval)

    def reload(self) -> Prediction:
        """Fetch the latest state and replace every field; returns ``self``."""
        client = self._api
        self._replace_from(client._call(_get_operation(client, self._require_id())))
        return self

    async def async_reload(self) -> Prediction:
        """Async twin of :meth:`reload`."""
        client = self._api
        updated = await client._acall(_get_operation(client, self._require_id()))
        self._replace_from(updated)
        return self

    def cancel(self) -> Prediction:
        """Cancel the prediction and replace every field with the answer; returns ``self``."""
        client = self._api
        self._replace_from(client._call(_cancel_operation(client, self._require_id())))
        return self

    async def async_cancel(self) -> Prediction:
        """Async twin of :meth:`cancel`."""
        client = self._api
        updated = await client._acall(_cancel_operation(client, self._require_id()))
        self._replace_from(updated)
        return self

    def output_iterator(self, *, timeout: float | None = None) -> Iterator[Any]:
        """Yield the output as it appears, polling until the prediction finishes.

        A generator function (as in 1.0.x). Every list item is yielded once, starting with the
        items already present; a non-list output is yielded whole once at completion. Raises
        :class:`~replicate.exceptions.ModelError` on failure (``PredictionCanceledError`` /
        ``PredictionAbortedError`` for canceled/aborted) and
        :class:`~replicate.exceptions.PredictionTimeoutError` after ``timeout`` seconds (counted
        from the first ``next()``).
        """
        deadline = _polling.deadline_after(_polling.check_timeout(timeout))
        yield from _output_iterator(self._api, self, deadline, timeout)

    async def async_output_iterator(self, *, timeout: float | None = None) -> AsyncIterator[Any]:
        """Async twin of :meth:`output_iterator`: ``async for item in p.async_output_iterator()``."""
        deadline = _polling.deadline_after(_polling.check_timeout(timeout))
        items = _async_output_iterator(self._api, self, deadline, timeout)
        try:
            async for item in items:
                yield item
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    def stream(
        self, use_file_output: bool | None = None, *, timeout: float | None = None
    ) -> Iterator[ServerSentEvent]:
        """The output as server-sent events (docs/streaming.md): a generator function, as in 1.0.x.

        The connection opens on the first ``next()`` and reconnects with ``Last-Event-ID`` when it
        drops; ``close()`` the generator when leaving the loop early. A model without streaming
        (no ``urls.stream``) raises :class:`~replicate.exceptions.ReplicateError` on the first
        ``next()``; an ``error`` event raises :class:`~replicate.exceptions.ModelStreamError`.
        """
        from .stream import _reader

        batches = _reader(
            self._api, self, use_file_output=use_file_output, timeout=timeout
        ).batches()
        try:
            for batch in batches:  # the events of each received chunk
                yield from batch
        finally:
            batches.close()  # type: ignore[attr-defined]

    async def async_stream(
        self, use_file_output: bool | None = None, *, timeout: float | None = None
    ) -> AsyncIterator[ServerSentEvent]:
        """Async twin of :meth:`stream`, an async generator function: ``async for ev in p.async_stream()``."""
        from .stream import _reader

        batches = _reader(
            self._api, self, use_file_output=use_file_output, timeout=timeout
        ).abatches()
        try:
            async for batch in batches:  # the events of each received chunk
                for event in batch:
                    yield event
        finally:
            await batches.aclose()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ helpers

    def _stream_url(self) -> str:
        url = (self.urls or {}).get("stream")
        if not url or not isinstance(url, str):
            raise ReplicateError("Model does not support streaming")
        return url

    def _require_id(self) -> str:
        if not self.id or not isinstance(self.id, str):
            raise ValueError("This prediction has no id")
        return self.id

    def _raise_for_status(self) -> None:
        """Raise the :class:`ModelError` for a failed/canceled/aborted/unknown-terminal prediction."""
        _raise_for_status(self)


_VALIDATOR = Prediction.__pydantic_validator__


def _set_client(obj: Resource, client: Client | None) -> None:
    if client is None:
        return
    private = obj.__pydantic_private__
    if private is None:
        obj._client = client
    else:
        private["_client"] = client


def _raise_for_status(prediction: Any) -> None:
    """Raise for a finished prediction or training that did not succeed
    (docs/predictions.md, "Final statuses and errors")."""
    status = prediction.status
    if status == "succeeded":
        return
    if status == "failed":
        raise ModelError(prediction)
    if status == "canceled":
        raise PredictionCanceledError(prediction)
    if status == "aborted":
        raise PredictionAbortedError(prediction)
    if _polling.is_terminal(status, getattr(prediction, "completed_at", None)):
        raise ModelError(prediction)


# ---------------------------------------------------------------------- operations


def _quote(value: str, what: str = "id") -> str:
    if type(value) is str and value.isalnum() and value.isascii():
        return value  # the usual case: nothing to escape
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")
    return quote(value, safe="")


def _parser(client: Client) -> Callable[[httpx.Response], Prediction]:
    def parse(response: httpx.Response) -> Prediction:
        return Prediction._from_response(response, client)

    return parse


def _get_operation(
    client: Client, id: str, parse: Callable[[httpx.Response], Prediction] | None = None
) -> Operation[Prediction]:
    return Operation("GET", f"/v1/predictions/{_quote(id)}", parse=parse or _parser(client))


def _cancel_operation(client: Client, id: str) -> Operation[Prediction]:
    return Operation(
        "POST",
        f"/v1/predictions/{_quote(id)}/cancel",
        parse=_parser(client),
        extensions={IDEMPOTENT_EXTENSION: True},
    )


def _check_create_params(params: Mapping[str, Any], where: str = "create") -> None:
    """Validate create parameters before any I/O (unknown keys, ``wait``, ``cancel_after``, ...)."""
    unknown = [key for key in params if key not in CREATE_PARAMS]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        raise TypeError(
            f"{where}() got unexpected keyword argument{'s' if len(unknown) > 1 else ''}: {names}"
            ". Use extra_body=... to send API fields this version does not know."
        )
    _polling.prefer_header(params.get("wait"))
    _polling.cancel_after_header(params.get("cancel_after"))
    strategy = params.get("file_encoding_strategy")
    if strategy not in _FILE_ENCODING_STRATEGIES:
        raise ValueError(
            f"file_encoding_strategy must be 'url', 'base64' or None, not {strategy!r}"
        )
    events = params.get("webhook_events_filter")
    if events is not None and (isinstance(events, (str, bytes)) or not _iterable(events)):
        raise TypeError(f"webhook_events_filter must be a list of event names, not {events!r}")
    for key in ("extra_headers", "extra_query", "extra_body"):
        value = params.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(f"{key} must be a mapping, not {type(value).__name__}")


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


_encoders: tuple[Any, Any] | None = None


def _load_encoders() -> tuple[Any, Any]:
    """``(encode_json, async_encode_json)`` from ``replicate.helpers`` (imported on first use)."""
    global _encoders
    if _encoders is None:
        from .helpers import async_encode_json, encode_json

        _encoders = (encode_json, async_encode_json)
    return _encoders


def _check_input(input: Any) -> dict[str, Any] | None:
    if input is None:
        return None
    if not isinstance(input, Mapping):
        raise TypeError(
            f"input must be a dict of input names to values, not {type(input).__name__}"
        )
    return input if isinstance(input, dict) else dict(input)


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is made of JSON types only (exact ``dict`` with ``str`` keys, ``list``,
    ``str``, ``int``, ``float``, ``bool``, ``None``): nothing for the encoder to upload,
    inline or convert."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is dict:
        return all(type(key) is str and _is_plain(item) for key, item in value.items())
    if kind is list:
        return all(_is_plain(item) for item in value)
    return False


def _encode_input(client: Client, input: Any, file_encoding_strategy: Any = None) -> Any:
    """Encode ``input`` for a create (files are uploaded or inlined here); ``None`` → ``{}``."""
    checked = _check_input(input)
    if not checked:
        return {}
    if _is_plain(checked):
        return dict(checked)  # the encoder would return an equal copy
    return _load_encoders()[0](checked, client, file_encoding_strategy)


async def _async_encode_input(
    client: Client, input: Any, file_encoding_strategy: Any = None
) -> Any:
    """Async twin of :func:`_encode_input`."""
    checked = _check_input(input)
    if not checked:
        return {}
    if _is_plain(checked):
        return dict(checked)
    return await _load_encoders()[1](checked, client, file_encoding_strategy)


def _wait_timeout(client: Client, prefer: str) -> httpx.Timeout:
    """The client's timeout with the read timeout a ``Prefer`` wait needs (built once per value)."""
    cache = client._config.wait_timeouts
    timeout = cache.get(prefer)
    if timeout is None:
        base = client._config.timeout
        timeout = cache[prefer] = with_min_read(base, _polling.wait_read_timeout(prefer) or 0.0)
    return timeout


def _create_operation(
    client: Client,
    path: str,
    input: Any,
    params: Mapping[str, Any],
    version: str | None = None,
    *,
    deadline: float | None = None,
) -> Operation[Prediction]:
    """The create request for already-encoded ``input`` (docs/predictions.md, "Creating a prediction").

    Body keys in order: ``input``, ``version`` (when given), ``webhook``, ``webhook_completed``,
    ``webhook_events_filter``, ``stream`` (only those not ``None``). ``wait`` sets ``Prefer`` and
    extends the read timeout; ``cancel_after`` sets ``Cancel-After``; ``deadline`` (a
    :func:`time.monotonic` value) bounds retries.
    """
    body: dict[str, Any] = {"input": {} if input is None else input}
    if version is not None:
        body["version"] = version
    for key in _BODY_PARAMS:
        value = params.get(key)
        if value is not None:
            body[key] = list(value) if key == "webhook_events_filter" else value
    headers: dict[str, str] = {}
    timeout: httpx.Timeout | None = None
    prefer = _polling.prefer_header(params.get("wait"))
    if prefer is not None:
        headers["Prefer"] = prefer
        timeout = _wait_timeout(client, prefer)
    cancel_after = _polling.cancel_after_header(params.get("cancel_after"))
    if cancel_after is not None:
        headers["Cancel-After"] = cancel_after
    sent_prefer = prefer is not None

    def parse(response: httpx.Response) -> Prediction:
        prediction = Prediction._from_response(response, client)
        prediction._sync_complete = _polling.is_sync_complete(
            response, sent_prefer, prediction.status
        )
        return prediction

    op = Operation(
        "POST",
        path,
        parse=parse,
        json=body,
        headers=headers,
        timeout=timeout,
        extensions={DEADLINE_EXTENSION: deadline} if deadline is not None else {},
    )
    return op.with_extras(
        params.get("extra_headers"), params.get("extra_query"), params.get("extra_body")
    )


def _create(
    client: Client,
    path: str,
    input: Any,
    params: Mapping[str, Any],
    version: str | None = None,
    *,
    deadline: float | None = None,
    where: str = "create",
) -> Prediction:
    """Validate, encode the input, and send a prediction create (sync)."""
    _check_create_params(params, where)
    encoded = _encode_input(client, input, params.get("file_encoding_strategy"))
    return client._call(
        _create_operation(client, path, encoded, params, version, deadline=deadline)
    )


async def _async_create(
    client: Client,
    path: str,
    input: Any,
    params: Mapping[str, Any],
    version: str | None = None,
    *,
    deadline: float | None = None,
    where: str = "create",
) -> Prediction:
    """Async twin of :func:`_create`."""
    _check_create_params(params, where)
    encoded = await _async_encode_input(client, input, params.get("file_encoding_strategy"))
    return await client._acall(
        _create_operation(client, path, encoded, params, version, deadline=deadline)
    )


# ---------------------------------------------------------------------- waiting

# The polling loop is written once, as a generator of steps (sans I/O); a tiny sync driver and a
# tiny async driver perform them. A step is ``(_ITEM, value)`` (hand ``value`` to the caller),
# ``(_SLEEP, seconds)`` or ``(_CALL, operation)`` (send it; the parsed answer is sent back in).
_ITEM, _SLEEP, _CALL = 0, 1, 2


def _timed_out(prediction: Prediction, timeout: float | None) -> PredictionTimeoutError:
    return PredictionTimeoutError(prediction, timeout)


def _final_items(prediction: Prediction, yielded: int) -> tuple[list[Any], int]:
    output = prediction.output
    if isinstance(output, list):
        return output[yielded:], len(output)
    return [], yielded


def _poll_steps(
    client: Client,
    prediction: Any,  # a Prediction or a Training
    interval: float | None,
    deadline: float | None,
    timeout: float | None,
    items: bool,
    fetch: Callable[[Any], Operation[Any]] | None = None,
) -> Generator[tuple[int, Any], Any, None]:
    """Poll ``prediction`` until it is terminal; with ``items``, also emit its output as it appears.

    ``interval`` ``None`` means the client's ``poll_interval`` (read when the loop starts).
    ``fetch`` builds the reload request (default: ``GET /v1/predictions/{id}``); trainings pass
    their own.
    """
    if interval is None:
        interval = client.poll_interval
    yielded = 0
    n = 0
    while True:
        if items:
            fresh, yielded = _final_items(prediction, yielded)
            for item in fresh:
                yield _ITEM, item
        if prediction.is_terminal:
            break
        n += 1
        left = _polling.remaining(deadline)
        if left is not None and left <= 0:
            raise _timed_out(prediction, timeout)
        delay = _polling.sleep_time(_polling.poll_delay(n, interval), deadline)
        if delay > 0:
            yield _SLEEP, delay
        if deadline is not None and _polling.remaining(deadline) == 0:
            raise _timed_out(prediction, timeout)
        reload = fetch(prediction) if fetch else _get_operation(client, prediction._require_id())
        prediction._replace_from((yield _CALL, reload))
    if items:
        _raise_for_status(prediction)
        output = prediction.output
        if not isinstance(output, list) and output is not None:
            yield _ITEM, output


def _drive(client: Client, steps: Generator[tuple[int, Any], Any, None]) -> Iterator[Any]:
    """Perform ``steps`` with blocking I/O, yielding the items."""
    reply = None
    while True:
        try:
            kind, value = steps.send(reply)
        except StopIteration:
            return
        reply = None
        if kind == _ITEM:
            yield value
        elif kind == _SLEEP:
            time.sleep(value)
        else:
            reply = client._call(value)


async def _adrive(
    client: Client, steps: Generator[tuple[int, Any], Any, None]
) -> AsyncIterator[Any]:
    """Async twin of :func:`_drive`."""
    reply = None
    while True:
        try:
            kind, value = steps.send(reply)
        except StopIteration:
            return
        reply = None
        if kind == _ITEM:
            yield value
        elif kind == _SLEEP:
            await asyncio.sleep(value)
        else:
            reply = await client._acall(value)


def _wait_steps(
    client: Client, prediction: Prediction, timeout: Any, poll_interval: Any
) -> Generator[tuple[int, Any], Any, None]:
    limit = _polling.check_timeout(timeout)
    interval = _polling.check_poll_interval(poll_interval)
    if interval is None:
        interval = client.poll_interval
    deadline = _polling.deadline_after(limit)
    return _poll_steps(client, prediction, interval, deadline, limit, items=False)


def _wait(client: Client, prediction: Prediction, timeout: Any, poll_interval: Any) -> Prediction:
    for _ in _drive(client, _wait_steps(client, prediction, timeout, poll_interval)):
        pass
    return prediction


async def _async_wait(
    client: Client, prediction: Prediction, timeout: Any, poll_interval: Any
) -> Prediction:
    async for _ in _adrive(client, _wait_steps(client, prediction, timeout, poll_interval)):
        pass
    return prediction


def _id_to_fetch(prediction: Any, timeout: Any, poll_interval: Any) -> str | None:
    """For ``Predictions.wait``: the id to fetch first (arguments checked before any request), or
    ``None`` when ``prediction`` is already a :class:`Prediction`."""
    if isinstance(prediction, str):
        _polling.check_timeout(timeout)
        _polling.check_poll_interval(poll_interval)
        return prediction
    if not isinstance(prediction, Prediction):
        raise TypeError(f"prediction must be a Prediction or an id, not {prediction!r}")
    return None


def _output_iterator(
    client: Client, prediction: Prediction, deadline: float | None, timeout: float | None
) -> Iterator[Any]:
    return _drive(client, _poll_steps(client, prediction, None, deadline, timeout, items=True))


def _async_output_iterator(
    client: Client, prediction: Prediction, deadline: float | None, timeout: float | None
) -> AsyncIterator[Any]:
    return _adrive(client, _poll_steps(client, prediction, None, deadline, timeout, items=True))


# ---------------------------------------------------------------------- namespace


def _iso(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        text = value.astimezone(_dt.timezone.utc).isoformat()
        return text.replace("+00:00", "Z")
    raise TypeError(f"{name} must be a datetime or an ISO 8601 string, not {value!r}")


def _version_id(version: Any) -> str:
    if isinstance(version, str):
        return version
    vid = getattr(version, "id", None)
    if isinstance(vid, str) and vid:
        return vid
    raise TypeError(f"version must be a Version or a version id string, not {version!r}")


class Predictions(Namespace):
    """The ``predictions`` namespace: create, get, list, cancel and wait for predictions."""

    class CreatePredictionParams(TypedDict, total=False):
        """Keyword parameters of prediction creates (docs/predictions.md, "Creating a prediction")."""

        wait: bool | int | float
        """``True`` → ``Prefer: wait``; N → ``Prefer: wait=N`` (1-60 seconds)."""
        cancel_after: int | float | _dt.timedelta | str
        """Cancel the prediction this long after creation (``Cancel-After``; at least 5 s)."""
        webhook: str
        """URL to call when the prediction changes."""
        webhook_completed: str
        """Legacy: URL to call when the prediction completes."""
        webhook_events_filter: list[str]
        """Which events trigger the webhook: ``start``, ``output``, ``logs``, ``completed``."""
        stream: bool
        """Request a streaming URL (deprecated; ``urls.stream`` is always set for streaming models)."""
        file_encoding_strategy: Literal["base64", "url"] | None
        """How files in the input are sent: uploaded (``url``, default) or inlined (``base64``)."""
        extra_headers: Mapping[str, str]
        """Extra request headers."""
        extra_query: Mapping[str, Any]
        """Extra query parameters."""
        extra_body: Mapping[str, Any]
        """Extra JSON body fields (merged last)."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self._parse = _parser(client)

    # ------------------------------------------------------------------ get

    def get(self, id: str, **options: Unpack[RequestOptions]) -> Prediction:
        """Get a prediction by id."""
        op = Operation("GET", f"/v1/predictions/{_quote(id)}", parse=self._parse)
        if options:
            op.with_options(options)
        return self._client._call(op)

    async def async_get(self, id: str, **options: Unpack[RequestOptions]) -> Prediction:
        """Async twin of :meth:`get`."""
        op = Operation("GET", f"/v1/predictions/{_quote(id)}", parse=self._parse)
        if options:
            op.with_options(options)
        return await self._client._acall(op)

    # ------------------------------------------------------------------ list

    def list(
        self,
        cursor: str | None = ...,  # type: ignore[assignment]
        *,
        created_after: _dt.datetime | str | None = None,
        created_before: _dt.datetime | str | None = None,
        source: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Page[Prediction]:
        """List predictions, newest first (100 per page).

        ``created_after`` / ``created_before`` filter by creation time (naive datetimes are UTC);
        ``source="web"`` lists predictions made on the website (last 14 days).
        """
        return self._call(
            self._list(
                cursor,
                created_after,
                created_before,
                source,
                options,
            )
        )

    async def async_list(
        self,
        cursor: str | None = ...,  # type: ignore[assignment]
        *,
        created_after: _dt.datetime | str | None = None,
        created_before: _dt.datetime | str | None = None,
        source: str | None = None,
        **options: Unpack[RequestOptions],
    ) -> Page[Prediction]:
        """Async twin of :meth:`list`."""
        return await self._acall(
            self._list(
                cursor,
                created_after,
                created_before,
                source,
                options,
            )
        )

    def _list(
        self,
        cursor: Any,
        created_after: Any,
        created_before: Any,
        source: Any,
        options: Mapping[str, Any],
    ) -> Operation[Page[Prediction]]:
        url = _cursor_url(self._client, cursor)
        query: dict[str, Any] = {}
        if url is None:
            url = "/v1/predictions"
            if created_after is not None:
                query["created_after"] = _iso(created_after, "created_after")
            if created_before is not None:
                query["created_before"] = _iso(created_before, "created_before")
            if source is not None:
                if not isinstance(source, str):
                    raise TypeError(f"source must be a string such as 'web', not {source!r}")
                query["source"] = source
        op = Operation(
            "GET", url, parse=_page_parser(Prediction, self._client), params=query or None
        )
        return op.with_options(options)

    # ------------------------------------------------------------------ cancel

    def cancel(self, id: str, **options: Unpack[RequestOptions]) -> Prediction:
        """Cancel a prediction (retried like an idempotent call)."""
        op = _cancel_operation(self._client, id).with_options(options)
        return self._call(op)

    async def async_cancel(self, id: str, **options: Unpack[RequestOptions]) -> Prediction:
        """Async twin of :meth:`cancel`."""
        op = _cancel_operation(self._client, id).with_options(options)
        return await self._acall(op)

    # ------------------------------------------------------------------ wait

    def wait(
        self,
        prediction: Prediction | str,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
    ) -> Prediction:
        """Poll a prediction (an id or a :class:`Prediction`) until it finishes and return it.

        A :class:`Prediction` is updated in place. Does not raise for failed/canceled/aborted
        predictions; raises :class:`~replicate.exceptions.PredictionTimeoutError` after
        ``timeout`` seconds.
        """
        fetch = _id_to_fetch(prediction, timeout, poll_interval)
        target = cast(Prediction, prediction) if fetch is None else self.get(fetch)
        return _wait(self._client, target, timeout, poll_interval)

    async def async_wait(
        self,
        prediction: Prediction | str,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
    ) -> Prediction:
        """Async twin of :meth:`wait`."""
        fetch = _id_to_fetch(prediction, timeout, poll_interval)
        target = cast(Prediction, prediction) if fetch is None else await self.async_get(fetch)
        return await _async_wait(self._client, target, timeout, poll_interval)

    # ------------------------------------------------------------------ create

    def create(
        self,
        *args: Any,
        model: Any = None,
        version: Any = None,
        deployment: Any = None,
        input: dict[str, Any] | None = None,
        **params: Any,
    ) -> Prediction:
        """Create a prediction.

        Name exactly one of ``model`` (``"owner/name"``, ``(owner, name)`` or a ``Model``),
        ``version`` (a ``Version`` or a version id / ``"owner/name:id"`` string) or
        ``deployment``. The 1.0.x positional form ``create(version, input)`` still works.
        Parameters: see :class:`Predictions.CreatePredictionParams`; unknown ones raise
        ``TypeError``. Returns the prediction as the server sent it (no polling).
        """
        kind, target, input = _route_create(args, model, version, deployment, input)
        if kind == "model":
            return self._client.models.predictions.create(target, input, **params)  # type: ignore[no-any-return]
        if kind == "deployment":
            return self._client.deployments.predictions.create(target, input, **params)  # type: ignore[no-any-return]
        return _create(self._client, "/v1/predictions", input, params, target)

    async def async_create(
        self,
        *args: Any,
        model: Any = None,
        version: Any = None,
        deployment: Any = None,
        input: dict[str, Any] | None = None,
        **params: Any,
    ) -> Prediction:
        """Async twin of :meth:`create`."""
        kind, target, input = _route_create(args, model, version, deployment, input)
        if kind == "model":
            return await self._client.models.predictions.async_create(target, input, **params)  # type: ignore[no-any-return]
        if kind == "deployment":
            return await self._client.deployments.predictions.async_create(target, input, **params)  # type: ignore[no-any-return]
        return await _async_create(self._client, "/v1/predictions", input, params, target)


def _route_create(
    args: tuple[Any, ...], model: Any, version: Any, deployment: Any, input: Any
) -> tuple[str, Any, Any]:
    if len(args) > 2:
        raise TypeError(
            f"create() takes at most 2 positional arguments (version, input), {len(args)} given"
        )
    if len(args) >= 1:
        version = args[0]
    if len(args) == 2:
        input = args[1]
    if sum(1 for value in (model, version, deployment) if value) != 1:
        raise ValueError("Exactly one of 'model', 'version', or 'deployment' must be specified.")
    if model:
        return "model", model, input
    if deployment:
        return "deployment", deployment, input
    return "version", _version_id(version), input
