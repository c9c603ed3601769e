"""Streaming prediction output as server-sent events (docs/streaming.md).

* :class:`ServerSentEvent` is one ``output``/``logs``/``error``/``done`` event; ``str(event)`` is the
  text of an ``output`` event (the URL for a file) and ``""`` otherwise.
* ``replicate.stream()`` / ``Client.stream()`` create a prediction at once and return a plain
  generator of its events (``types.GeneratorType``, as in 1.0.x); ``await
  replicate.async_stream()`` / ``await Client.async_stream()`` return an async generator.
  :func:`stream` / :func:`async_stream` here are the 1.0.x (async) generator functions taking the
  client first. :class:`Stream` / :class:`AsyncStream` wrap one existing prediction's stream as an
  object with ``close()``/``aclose()`` and context-manager support.
* :class:`EventSource` is the 1.0.x reader of the events of one already open response.

The connection policy (reconnects with ``Last-Event-ID``, the overall deadline) and the
interpretation of events live in :mod:`replicate._stream_reader`.
"""

from __future__ import annotations

import builtins
import json
import math
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from enum import Enum
from typing import TYPE_CHECKING, Any

import httpx

from . import identifier as identifier
from ._sse import SSEDecoder
from ._stream_policy import DEFAULT_RETRY_DELAY as DEFAULT_RETRY_DELAY
from ._stream_policy import MAX_CONSECUTIVE_FAILURES as MAX_CONSECUTIVE_FAILURES
from ._stream_policy import MAX_RETRY_DELAY as MAX_RETRY_DELAY
from ._stream_reader import Reader, async_events, stream_url, sync_events
from .exceptions import ReplicateError as ReplicateError
from .helpers import FileOutput
from .helpers import transform_output as transform_output

if TYPE_CHECKING:
    from .client import Client
    from .prediction import Prediction

__all__ = [
    "AsyncStream",
    "EventSource",
    "ServerSentEvent",
    "Stream",
    "async_stream",
    "stream",
]


# ------------------------------------------------------------------------------------ events


class ServerSentEvent:
    """One event of a prediction's output stream.

    Attributes:
        event: The kind of event (:class:`ServerSentEvent.EventType`).
        data: The event's text; for ``output`` events under ``use_file_output=True`` whose text
            is a single URL, a :class:`~replicate.helpers.FileOutput`.
        id: The event id, ``""`` when the server sent none.
        retry: The reconnection time (milliseconds) the server sent with this event, or ``None``.

    ``str(event)`` is the output text (the URL for a file) of ``output`` events and ``""`` for
    every other kind, so ``print(str(event), end="")`` prints just the model's output.
    """

    class EventType(Enum):
        """The kinds of event a prediction stream carries."""

        OUTPUT = "output"
        LOGS = "logs"
        ERROR = "error"
        DONE = "done"

    __slots__ = ("data", "event", "id", "retry")

    event: ServerSentEvent.EventType
    data: str | FileOutput
    id: str
    retry: int | None

    def __init__(
        self,
        *,
        event: ServerSentEvent.EventType | str,
        data: str | FileOutput,
        id: str,
        retry: int | None = None,
    ) -> None:
        try:
            event_type = ServerSentEvent.EventType
            kind = event if isinstance(event, event_type) else event_type(event)
        except ValueError:
            names = ", ".join(repr(k.value) for k in ServerSentEvent.EventType)
            raise ValueError(f"event must be one of {names}, not {event!r}") from None
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            data = str(data)
        if not isinstance(data, (str, FileOutput)):
            raise TypeError(f"data must be a str or a FileOutput, not {type(data).__name__}")
        if not isinstance(id, str):
            raise TypeError(f"id must be a str, not {type(id).__name__}")
        if retry is not None and (isinstance(retry, bool) or not isinstance(retry, int)):
            raise TypeError(f"retry must be an int or None, not {type(retry).__name__}")
        self.event = kind
        self.data = data
        self.id = id
        self.retry = retry

    def __str__(self) -> str:
        if self.event is _OUTPUT:
            return str(self.data)
        return ""

    def __repr__(self) -> str:
        return (
            f"ServerSentEvent(event={self.event!r}, data={self.data!r}, id={self.id!r}, "
            f"retry={self.retry!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (
            self.event is other.event
            and self.data == other.data
            and self.id == other.id
            and self.retry == other.retry
        )

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """``(field, value)`` pairs, like a 1.0.x (pydantic) event."""
        yield "event", self.event
        yield "data", self.data
        yield "id", self.id
        yield "retry", self.retry

    def dict(self) -> builtins.dict[str, Any]:
        """The fields as a dict (``event`` stays an :class:`EventType`)."""
        return {"event": self.event, "data": self.data, "id": self.id, "retry": self.retry}

    def model_dump(self, *, mode: str = "python") -> builtins.dict[str, Any]:
        """The fields as a dict; ``mode="json"`` gives JSON values (event name, URL text)."""
        if mode == "json":
            return {
                "event": self.event.value,
                "data": str(self.data),
                "id": self.id,
                "retry": self.retry,
            }
        return self.dict()

    def json(self, **kwargs: Any) -> str:
        """The event as JSON text (``json.dumps`` keyword arguments are accepted)."""
        return json.dumps(self.model_dump(mode="json"), **kwargs)

    def model_dump_json(self) -> str:
        """The event as compact JSON text."""
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"))

    def copy(self, *, update: Mapping[str, Any] | None = None) -> ServerSentEvent:
        """A copy, with the fields in ``update`` replaced (validated)."""
        if not update:
            return _event(self.event, self.data, self.id, self.retry)
        return ServerSentEvent(**{**self.dict(), **update})

    def __copy__(self) -> ServerSentEvent:
        return self.copy()


_EventType = ServerSentEvent.EventType
_OUTPUT = _EventType.OUTPUT
_LOGS = _EventType.LOGS
_ERROR = _EventType.ERROR
_DONE = _EventType.DONE
_KINDS: dict[str, ServerSentEvent.EventType] = {kind.value: kind for kind in _EventType}
_new = object.__new__


def _event(
    kind: ServerSentEvent.EventType, data: Any, id: str, retry: int | None
) -> ServerSentEvent:
    """Build an event without validation (the decoder's values are already well typed)."""
    ev: ServerSentEvent = _new(ServerSentEvent)
    ev.event = kind
    ev.data = data
    ev.id = id
    ev.retry = retry
    return ev


# ------------------------------------------------------------------------------------ 1.0.x EventSource


class EventSource:
    """The events of one open ``text/event-stream`` response (the 1.0.x reader).

    Iterate it (``for``, or ``async for`` over an async response) to get
    :class:`ServerSentEvent`\\ s: unknown event names are skipped, an ``error`` event raises
    :class:`~replicate.exceptions.ModelStreamError`, ``done`` ends the iteration. It reads only
    the given response; :func:`stream` adds reconnects.
    """

    class Decoder:
        """The 1.0.x line-by-line decoder: feed lines without their line end."""

        def __init__(self) -> None:
            self._decoder = SSEDecoder()

        def decode(self, line: str) -> ServerSentEvent | None:
            """Take one line; return the event a blank line completes (unknown names: ``None``)."""
            for name, data, eid, retry in self._decoder.feed(line.encode() + b"\n"):
                kind = _KINDS.get(name)
                if kind is not None:
                    return _event(kind, data, eid, retry)
            return None

    def __init__(
        self, client: Client, response: httpx.Response, *, use_file_output: bool | None = True
    ) -> None:
        self.client = client
        self.response = response
        self.use_file_output = use_file_output is not False

    def _reader(self) -> Reader:
        return Reader(
            ServerSentEvent,
            self.client,
            str(self.response.request.url),
            use_file_output=self.use_file_output,
            reconnect=False,
        )

    def __iter__(self) -> Iterator[ServerSentEvent]:
        return sync_events(self._reader(), self.response)

    def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        return async_events(self._reader(), self.response)


# ------------------------------------------------------------------------------------ Stream objects


def _deadline(timeout: float | None, clock: Callable[[], float] | None = None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return (clock or time.monotonic)() + float(timeout)


def _client_of(prediction: Any) -> Client:
    api = getattr(prediction, "_api", None)
    if api is not None:
        return api  # type: ignore[no-any-return]
    import replicate

    return replicate.default_client


def _reader(
    client: Client | None,
    prediction: Any,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    deadline: float | None = None,
    sleep: Callable[[float], None] | None = None,
    async_sleep: Callable[[float], Awaitable[None]] | None = None,
    clock: Callable[[], float] | None = None,
) -> Reader:
    """The reader of ``prediction``'s event stream (raises if it has no ``urls.stream``)."""
    url = stream_url(prediction)
    if deadline is None:
        deadline = _deadline(timeout, clock)
    return Reader(
        ServerSentEvent,
        client if client is not None else _client_of(prediction),
        url,
        prediction,
        use_file_output=use_file_output is not False,
        timeout=timeout,
        deadline=deadline,
        sleep=sleep,
        async_sleep=async_sleep,
        clock=clock,
    )


class Stream:
    """The server-sent events of one prediction as an object: an iterator and a context manager.

    ``prediction`` is the prediction being streamed. The connection opens on the first
    ``next()``; leave early with :meth:`close` (or a ``with`` block) to release it.
    An ``error`` event raises :class:`~replicate.exceptions.ModelStreamError`, a canceled or
    aborted prediction :class:`~replicate.exceptions.PredictionCanceledError` /
    :class:`~replicate.exceptions.PredictionAbortedError`; the ``done`` event is yielded last.
    (:func:`replicate.stream` and ``Prediction.stream()`` return plain generators, as in 1.0.x.)
    """

    def __init__(
        self,
        prediction: Prediction,
        *,
        client: Client | None = None,
        use_file_output: bool | None = True,
        timeout: float | None = None,
        deadline: float | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.prediction = prediction
        reader = _reader(
            client,
            prediction,
            use_file_output=use_file_output,
            timeout=timeout,
            deadline=deadline,
            sleep=sleep,
            clock=clock,
        )
        self._iterator: Generator[ServerSentEvent, None, None] = sync_events(reader)  # type: ignore[assignment]

    def __iter__(self) -> Iterator[ServerSentEvent]:
        # The generator itself: ``for`` loops skip one Python-level call per event.
        return self._iterator

    def __next__(self) -> ServerSentEvent:
        return next(self._iterator)

    def close(self) -> None:
        """Close the connection (idempotent). Further iteration ends at once."""
        self._iterator.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Stream of prediction {getattr(self.prediction, 'id', None)!r}>"


class AsyncStream:
    """The server-sent events of one prediction as an object, for ``async for``.

    Use :meth:`aclose` or ``async with`` to release the connection when leaving early.
    """

    def __init__(
        self,
        prediction: Prediction,
        *,
        client: Client | None = None,
        use_file_output: bool | None = True,
        timeout: float | None = None,
        deadline: float | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.prediction = prediction
        reader = _reader(
            client,
            prediction,
            use_file_output=use_file_output,
            timeout=timeout,
            deadline=deadline,
            async_sleep=sleep,
            clock=clock,
        )
        self._iterator: AsyncGenerator[ServerSentEvent, None] = async_events(reader)  # type: ignore[assignment]

    def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        # The async generator itself: ``async for`` skips one coroutine per event.
        return self._iterator

    def __anext__(self) -> Awaitable[ServerSentEvent]:
        return self._iterator.__anext__()

    async def aclose(self) -> None:
        """Close the connection (idempotent). Further iteration ends at once."""
        await self._iterator.aclose()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncStream of prediction {getattr(self.prediction, 'id', None)!r}>"


# ------------------------------------------------------------------------------------ entry points


def _create_args(
    ref: Any, params: dict[str, Any], timeout: float | None
) -> tuple[str, str | None, dict[str, Any]]:
    """Resolve ``ref`` (no I/O) to the create path and version; complete the create params."""
    from urllib.parse import quote

    from .identifier import resolve_ref

    resolved = resolve_ref(ref)
    params = dict(params)
    if params.get("stream") is None:
        params["stream"] = True
    if timeout is not None and params.get("cancel_after") is None:
        params["cancel_after"] = max(5, math.ceil(timeout))
    if resolved.deployment is not None:
        owner, name = resolved.deployment
        path = f"/v1/deployments/{quote(owner, safe='')}/{quote(name, safe='')}/predictions"
        return path, None, params
    if resolved.version_id is not None:
        return "/v1/predictions", resolved.version_id, params
    assert resolved.owner is not None and resolved.name is not None
    path = (
        f"/v1/models/{quote(resolved.owner, safe='')}/{quote(resolved.name, safe='')}/predictions"
    )
    return path, None, params


def _start(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    **params: Any,
) -> tuple[Prediction, Generator[ServerSentEvent, None, None]]:
    """Create the prediction now; return it and the generator of its events (not yet connected)."""
    from .prediction import _create

    deadline = _deadline(timeout)
    path, version, params = _create_args(ref, params, timeout)
    prediction = _create(client, path, input, params, version, deadline=deadline, where="stream")
    reader = _reader(
        client, prediction, use_file_output=use_file_output, timeout=timeout, deadline=deadline
    )
    return prediction, sync_events(reader)  # type: ignore[return-value]


async def _async_start(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    **params: Any,
) -> tuple[Prediction, AsyncGenerator[ServerSentEvent, None]]:
    """Async twin of :func:`_start`."""
    from .prediction import _async_create, _check_create_params

    deadline = _deadline(timeout)
    path, version, params = _create_args(ref, params, timeout)
    _check_create_params(params, "async_stream")
    prediction = await _async_create(
        client, path, input, params, version, deadline=deadline, where="async_stream"
    )
    reader = _reader(
        client, prediction, use_file_output=use_file_output, timeout=timeout, deadline=deadline
    )
    return prediction, async_events(reader)  # type: ignore[return-value]


def _open(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    **params: Any,
) -> Generator[ServerSentEvent, None, None]:
    """``Client.stream()``: create the prediction now and return the generator of its events.

    ``ref`` is ``"owner/name"``, ``"owner/name:version"``, a version id, or a
    ``Model``/``Version``/``ModelVersionIdentifier``/``Deployment``. ``params`` are the create
    parameters of :class:`~replicate.prediction.Predictions.CreatePredictionParams` (``stream``
    defaults to ``True``; no ``wait`` by default). ``timeout`` bounds the whole stream, create
    included: the prediction is then canceled and
    :class:`~replicate.exceptions.PredictionTimeoutError` raised.
    """
    return _start(client, ref, input, use_file_output=use_file_output, timeout=timeout, **params)[1]


async def _async_open(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    **params: Any,
) -> AsyncGenerator[ServerSentEvent, None]:
    """``await Client.async_stream()``: create the prediction; the async generator of its events."""
    started = await _async_start(
        client, ref, input, use_file_output=use_file_output, timeout=timeout, **params
    )
    return started[1]


def stream(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    **params: Any,
) -> Iterator[ServerSentEvent]:
    """The events of a new prediction of ``ref`` run by ``client`` (the 1.0.x generator function).

    As in 1.0.x the prediction is created when the iteration starts; ``replicate.stream()`` and
    ``Client.stream()`` create it at once instead (their errors raise at the call).
    """
    yield from _open(client, ref, input, use_file_output=use_file_output, timeout=timeout, **params)


async def async_stream(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    **params: Any,
) -> AsyncIterator[ServerSentEvent]:
    """Async twin of :func:`stream` (the 1.0.x async generator function).

    ``await replicate.async_stream(...)`` / ``await Client.async_stream(...)`` are the
    coroutine functions that create the prediction and return such an async generator.
    """
    events = await _async_open(
        client, ref, input, use_file_output=use_file_output, timeout=timeout, **params
    )
    try:
        async for event in events:
            yield event
    finally:
        await events.aclose()
