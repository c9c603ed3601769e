"""Streaming prediction output as server-sent events (docs/streaming.md).

* :class:`ServerSentEvent` is one ``output``/``logs``/``error``/``done`` event; ``str(event)`` is the
  text of an ``output`` event (the URL for a file) and ``""`` otherwise.
* :class:`Stream` / :class:`AsyncStream` iterate the events of one prediction's ``urls.stream``,
  reconnecting with ``Last-Event-ID`` when the connection drops, idles or ends before ``done``.
* :func:`stream` / :func:`async_stream` create a prediction and return its stream (the
  implementation of ``replicate.stream()``, ``Client.stream()`` and their async twins).
* :class:`EventSource` is the 1.0.x reader of the events of one already open response.

Bytes are decoded by :class:`replicate._sse.SSEDecoder`; this module interprets the events (names,
duplicate ids, file outputs, terminal events) and owns the connection policy:

* ``GET <urls.stream>`` on the download client with ``Accept: text/event-stream``,
  ``Cache-Control: no-store``, the API token (the URL was issued by the API) and ``Last-Event-ID``
  on reconnects; the read timeout is at least 60 s of idleness.
* A non-2xx answer raises the status-mapped :class:`~replicate.exceptions.ReplicateError`
  (429 and 5xx are retried, see below); a 2xx answer that is not ``text/event-stream`` raises
  :class:`~replicate.exceptions.APIResponseValidationError`.
* Reconnects wait the server's ``retry`` value (default 1 s), doubled after each consecutive
  failure and capped at 30 s. A failure is a connection attempt ending in a transport error, 429
  or 5xx, or a connection that drops or ends before delivering a new event. Five consecutive
  failures raise the last error; an idle timeout is not a failure; another 4xx raises at once.
* ``timeout=`` is an overall deadline: when it passes, the prediction is canceled (best effort)
  and :class:`~replicate.exceptions.PredictionTimeoutError` is raised.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from ._http import DEADLINE_EXTENSION, IDEMPOTENT_EXTENSION, STREAM_MIN_READ, with_min_read
from ._sse import SSEDecoder
from .exceptions import (
    APIResponseValidationError,
    ModelError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionTimeoutError,
    ReplicateError,
    wrap_transport_error,
)
from .helpers import FileOutput, _is_file_url

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

logger = logging.getLogger("replicate")

#: Seconds before a reconnect when the server sent no ``retry`` field.
DEFAULT_RETRY_DELAY = 1.0
#: Upper bound of the reconnect delay, in seconds.
MAX_RETRY_DELAY = 30.0
#: Consecutive failed connection attempts after which the last error is raised.
MAX_CONSECUTIVE_FAILURES = 5


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


# ------------------------------------------------------------------------------------ helpers


def _safe_url(url: str | httpx.URL) -> str:
    """The URL without its query string (stream URLs may carry credentials), for logs/errors."""
    try:
        return str(httpx.URL(url).copy_with(query=None, fragment=None))
    except Exception:
        return "<stream URL>"


def _stream_url(prediction: Any) -> str:
    """``prediction.urls["stream"]``, or the 1.0.x "does not support streaming" error."""
    urls = getattr(prediction, "urls", None)
    url = urls.get("stream") if isinstance(urls, Mapping) else None
    if not url or not isinstance(url, str):
        raise ReplicateError("Model does not support streaming")
    return url


def _client_of(prediction: Any) -> Client:
    api = getattr(prediction, "_api", None)
    if api is not None:
        return api  # type: ignore[no-any-return]
    import replicate

    return replicate.default_client


def _detail_of(data: str) -> str | None:
    """The ``detail`` (or ``error``) of JSON event data, else the stripped raw text."""
    try:
        body = json.loads(data)
    except ValueError:
        return data.strip() or None
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            value = body.get(key)
            if value:
                return value if isinstance(value, str) else json.dumps(value)
        return None
    return data.strip() or None


def _done_reason(data: str) -> str:
    if not data.strip():
        return ""
    try:
        body = json.loads(data)
    except ValueError:
        return ""
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else ""


def _standalone_prediction(client: Client | None, status: str, error: str | None) -> Any:
    """A failed/canceled prediction to attach to an error when the stream has none (EventSource)."""
    try:
        from .prediction import Prediction

        return Prediction._from_api({"status": status, "error": error}, client)
    except Exception:  # prediction.py unavailable: the message is the next best thing
        return error or f"Prediction {status}"


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").partition(";")[0].strip().lower()


# ------------------------------------------------------------------------------------ the reader


class _Reader:
    """The state and decisions of one event stream across reconnects (no I/O of its own).

    The sync and async shells (:meth:`iter_sync`, :meth:`iter_async`) open connections, feed the
    decoder and sleep; everything they decide (what to send, whether a status is fatal, how long
    to wait, what an ``error``/``done`` event means) is asked of this object.
    """

    def __init__(
        self,
        client: Client | None,
        url: str | None,
        prediction: Any = None,
        *,
        use_file_output: bool = True,
        timeout: float | None = None,
        deadline: float | None = None,
        reconnect: bool = True,
        sleep: Callable[[float], None] | None = None,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.prediction = prediction
        self.use_file_output = bool(use_file_output)
        self.timeout = timeout
        self.deadline = deadline
        self.reconnect = reconnect
        self.sleep = sleep
        self.async_sleep = async_sleep
        self.clock = clock or time.monotonic
        self.decoder = SSEDecoder()
        self.seen: set[str] = set()
        self.failures = 0
        self.connections = 0
        self.last_error: BaseException | None = None
        self.retry_after: float | None = None

    # ---- requests --------------------------------------------------------------------------

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - self.clock()

    def request_timeout(self) -> httpx.Timeout:
        """The client's timeout with >= 60 s of read idleness, every phase capped by the deadline."""
        assert self.client is not None
        timeout = with_min_read(self.client._config.timeout, STREAM_MIN_READ)
        remaining = self.remaining()
        if remaining is None:
            return timeout
        cap = max(remaining, 0.001)

        def capped(value: float | None) -> float:
            return cap if value is None else min(value, cap)

        return httpx.Timeout(
            connect=capped(timeout.connect),
            read=capped(timeout.read),
            write=capped(timeout.write),
            pool=capped(timeout.pool),
        )

    def build_request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        assert self.client is not None and self.url is not None
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        headers.update(self.client._download_auth(self.url, issued=True))
        last_id = self.decoder.last_event_id
        if last_id:
            headers["Last-Event-ID"] = last_id
        extensions: dict[str, Any] = {IDEMPOTENT_EXTENSION: False}
        if self.deadline is not None:
            extensions[DEADLINE_EXTENSION] = self.deadline
        return http.build_request(
            "GET", self.url, headers=headers, timeout=self.request_timeout(), extensions=extensions
        )

    def refresh_read_timeout(self, response: httpx.Response) -> None:
        """Keep the per-read timeout within the deadline (httpcore reads it before every read)."""
        remaining = self.remaining()
        if remaining is None:
            return
        timeouts = response.request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            read = timeouts.get("read")
            if read is None or read > remaining:
                timeouts["read"] = max(remaining, 0.001)

    # ---- outcomes of a connection attempt -------------------------------------------------

    def connect_failed(self, error: BaseException) -> None:
        """A transport error, 429 or 5xx while connecting: count it; raise if fatal."""
        self.last_error = error
        if not self.reconnect:
            raise error
        self.retry_after = getattr(error, "retry_after", None)
        self.failures += 1
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            logger.warning(
                "Giving up on the event stream %s after %d consecutive failures: %s",
                _safe_url(self.url or ""),
                self.failures,
                error,
            )
            raise error
        logger.info(
            "Event stream %s: connection failed (%s); retrying (%d/%d)",
            _safe_url(self.url or ""),
            error,
            self.failures,
            MAX_CONSECUTIVE_FAILURES,
        )

    def check_response(self, response: httpx.Response) -> BaseException | None:
        """Classify an answer whose body (if an error) has been read.

        Returns ``None`` for a usable event stream, or the error to count as a failure (429,
        5xx); raises a fatal error (another status, wrong content type).
        """
        status = response.status_code
        if not 200 <= status < 300:
            error = ReplicateError.from_response(response)
            if status == 429 or status >= 500:
                return error
            raise error
        media = _media_type(response)
        if media != "text/event-stream":
            raise APIResponseValidationError(
                title="Invalid response",
                status=status,
                detail=(
                    f"Expected a text/event-stream response from {_safe_url(response.request.url)}, "
                    f"got content type {media or 'none'!r}"
                ),
                headers=response.headers,
                request=response.request,
                response=response,
            )
        self.connections += 1
        if self.connections > 1:
            logger.debug(
                "Event stream %s: reconnected (Last-Event-ID %r)",
                _safe_url(self.url or ""),
                self.decoder.last_event_id,
            )
        return None

    def connection_ended(self, error: BaseException | None, progressed: bool) -> None:
        """The body ended (``error`` is ``None``) or broke before ``done``: decide whether to go on.

        An idle timeout is never a failure; a drop or an end without a new event is.
        """
        if not self.reconnect:
            if error is not None:
                raise error
            return
        if progressed:
            self.failures = 0
        if isinstance(error, httpx.ReadTimeout):
            logger.info(
                "Event stream %s: idle for too long; reconnecting", _safe_url(self.url or "")
            )
            return
        if error is None:
            error = ReplicateError("The event stream ended before its done event", status=None)
            logger.info(
                "Event stream %s ended before its done event; reconnecting",
                _safe_url(self.url or ""),
            )
        else:
            logger.info(
                "Event stream %s: connection lost (%s); reconnecting",
                _safe_url(self.url or ""),
                error,
            )
        if not progressed:
            self.connect_failed(error)

    def delay(self) -> float:
        """Seconds to wait before the next connection attempt (capped by the deadline)."""
        retry = self.decoder.retry
        base = DEFAULT_RETRY_DELAY if retry is None else retry / 1000.0
        delay = min(base * 2.0 ** max(self.failures - 1, 0), MAX_RETRY_DELAY)
        if self.retry_after is not None:
            # A 429's Retry-After, when longer (still capped).
            delay = max(delay, min(self.retry_after, MAX_RETRY_DELAY))
            self.retry_after = None
        remaining = self.remaining()
        if remaining is not None:
            delay = max(min(delay, remaining), 0.0)
        return delay

    # ---- deadline -------------------------------------------------------------------------

    def check_deadline(self) -> None:
        if self.deadline is not None and self.clock() >= self.deadline:
            self.expire()

    def expire(self) -> NoReturn:
        """The overall deadline passed: cancel the prediction (best effort) and raise."""
        canceled = self._cancel_sync()
        raise PredictionTimeoutError(self.prediction, self.timeout, canceled)

    async def aexpire(self) -> NoReturn:
        canceled = False
        cancel = getattr(self.prediction, "async_cancel", None)
        if cancel is not None:
            try:
                await cancel()
                canceled = True
            except Exception as exc:
                logger.warning("Could not cancel prediction after its timeout: %s", exc)
        raise PredictionTimeoutError(self.prediction, self.timeout, canceled)

    def _cancel_sync(self) -> bool:
        cancel = getattr(self.prediction, "cancel", None)
        if cancel is None:
            return False
        try:
            cancel()
        except Exception as exc:
            logger.warning("Could not cancel prediction after its timeout: %s", exc)
            return False
        return True

    # ---- events ---------------------------------------------------------------------------

    def file_output(self, data: str) -> Any:
        return FileOutput(data, self.client) if _is_file_url(data, self.client) else data

    def terminal(
        self, kind: ServerSentEvent.EventType, data: str, id: str, retry: int | None
    ) -> ServerSentEvent:
        """Handle an ``error`` or ``done`` event: raise, or return the ``done`` event to yield."""
        if kind is _ERROR:
            self._fail("failed", _detail_of(data), ModelError)
        reason = _done_reason(data)
        if reason == "canceled":
            self._fail("canceled", None, PredictionCanceledError)
        if reason == "aborted":
            self._fail("aborted", None, PredictionAbortedError)
        if reason == "error":
            self._fail("failed", _detail_of(data), ModelError)
        if reason:
            logger.debug("Event stream done with reason %r", reason)
        return _event(_DONE, data, id, retry)

    def _fail(self, status: str, error: str | None, cls: type[ModelError]) -> NoReturn:
        prediction = self.prediction
        if prediction is None:
            raise cls(_standalone_prediction(self.client, status, error))
        try:
            prediction.status = status
            if error is not None or status == "failed":
                prediction.error = error
        except Exception:  # a frozen or foreign object: report it as it is
            pass
        raise cls(prediction)

    # ---- sync shell -----------------------------------------------------------------------

    def _connect_sync(self, http: httpx.Client) -> httpx.Response:
        while True:
            self.check_deadline()
            request = self.build_request(http)
            try:
                response = http.send(request, stream=True)
            except httpx.TransportError as exc:
                self.connect_failed(wrap_transport_error(exc))
            except httpx.RequestError as exc:
                raise wrap_transport_error(exc) from exc
            else:
                if not 200 <= response.status_code < 300:
                    try:
                        response.read()
                    except httpx.HTTPError:
                        pass
                    finally:
                        response.close()
                try:
                    error = self.check_response(response)
                except BaseException:
                    response.close()
                    raise
                if error is None:
                    return response
                self.connect_failed(error)
            self._pause_sync()

    def _pause_sync(self) -> None:
        delay = self.delay()
        if delay > 0:
            (self.sleep or _sleep)(delay)
        self.check_deadline()

    def iter_sync(self, response: httpx.Response | None = None) -> Iterator[ServerSentEvent]:
        """Yield the events, reconnecting as needed (or only those of ``response``)."""
        decoder = self.decoder
        feed = decoder.feed
        seen = self.seen
        seen_add = seen.add
        kinds = _KINDS.get
        use_file_output = self.use_file_output
        new = _new
        cls = ServerSentEvent
        output = _OUTPUT
        logs = _LOGS
        has_deadline = self.deadline is not None
        while True:
            if response is None:
                # Asked per connection: a client closed meanwhile is rebuilt, not reused.
                assert self.client is not None
                http = self.client._get_sync_client(download=True)
                response = self._connect_sync(http)
            else:
                self._check_given(response)
            progressed = False
            error: BaseException | None = None
            try:
                for chunk in response.iter_bytes():
                    if has_deadline:
                        self.check_deadline()
                        self.refresh_read_timeout(response)
                    for name, data, eid, retry in feed(chunk):
                        kind = kinds(name)
                        if kind is None:
                            logger.debug("Skipping event %r", name)
                            continue
                        if eid:
                            if eid in seen:
                                continue
                            seen_add(eid)
                        progressed = True
                        if kind is output:
                            if use_file_output and ":" in data:
                                data = self.file_output(data)
                        elif kind is not logs:
                            yield self.terminal(kind, data, eid, retry)
                            return
                        ev = new(cls)
                        ev.event = kind
                        ev.data = data
                        ev.id = eid
                        ev.retry = retry
                        yield ev
            except httpx.TransportError as exc:
                error = wrap_transport_error(exc)
            finally:
                response.close()
                decoder.reset()
            response = None
            if self.reconnect:
                self.check_deadline()
            self.connection_ended(error, progressed)
            if not self.reconnect:
                return
            self._pause_sync()

    def _check_given(self, response: httpx.Response) -> None:
        """Validate a response handed to :class:`EventSource`."""
        if not 200 <= response.status_code < 300:
            try:
                response.read()
            except Exception:
                pass
            raise ReplicateError.from_response(response)
        self.check_response(response)

    # ---- async shell ----------------------------------------------------------------------

    async def _connect_async(self, http: httpx.AsyncClient) -> httpx.Response:
        while True:
            if self.deadline is not None and self.clock() >= self.deadline:
                await self.aexpire()
            request = self.build_request(http)
            try:
                response = await http.send(request, stream=True)
            except httpx.TransportError as exc:
                self.connect_failed(wrap_transport_error(exc))
            except httpx.RequestError as exc:
                raise wrap_transport_error(exc) from exc
            else:
                if not 200 <= response.status_code < 300:
                    try:
                        await response.aread()
                    except httpx.HTTPError:
                        pass
                    finally:
                        await response.aclose()
                try:
                    error = self.check_response(response)
                except BaseException:
                    await response.aclose()
                    raise
                if error is None:
                    return response
                self.connect_failed(error)
            await self._pause_async()

    async def _pause_async(self) -> None:
        delay = self.delay()
        if delay > 0:
            await (self.async_sleep or _async_sleep)(delay)
        if self.deadline is not None and self.clock() >= self.deadline:
            await self.aexpire()

    async def iter_async(
        self,
        response: httpx.Response | None = None,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """Async twin of :meth:`iter_sync`; ``prepare`` runs first (e.g. the prediction create)."""
        if prepare is not None:
            await prepare()
        decoder = self.decoder
        feed = decoder.feed
        seen = self.seen
        seen_add = seen.add
        kinds = _KINDS.get
        use_file_output = self.use_file_output
        new = _new
        cls = ServerSentEvent
        output = _OUTPUT
        logs = _LOGS
        has_deadline = self.deadline is not None
        while True:
            if response is None:
                # Asked per connection: a client closed meanwhile is rebuilt, not reused.
                assert self.client is not None
                http = self.client._get_async_client(download=True)
                response = await self._connect_async(http)
            else:
                await self._acheck_given(response)
            progressed = False
            error: BaseException | None = None
            try:
                async for chunk in response.aiter_bytes():
                    if has_deadline:
                        if self.clock() >= self.deadline:  # type: ignore[operator]
                            await self.aexpire()
                        self.refresh_read_timeout(response)
                    for name, data, eid, retry in feed(chunk):
                        kind = kinds(name)
                        if kind is None:
                            logger.debug("Skipping event %r", name)
                            continue
                        if eid:
                            if eid in seen:
                                continue
                            seen_add(eid)
                        progressed = True
                        if kind is output:
                            if use_file_output and ":" in data:
                                data = self.file_output(data)
                        elif kind is not logs:
                            yield self.terminal(kind, data, eid, retry)
                            return
                        ev = new(cls)
                        ev.event = kind
                        ev.data = data
                        ev.id = eid
                        ev.retry = retry
                        yield ev
            except httpx.TransportError as exc:
                error = wrap_transport_error(exc)
            finally:
                await response.aclose()
                decoder.reset()
            response = None
            if self.reconnect and self.deadline is not None and self.clock() >= self.deadline:
                await self.aexpire()
            self.connection_ended(error, progressed)
            if not self.reconnect:
                return
            await self._pause_async()

    async def _acheck_given(self, response: httpx.Response) -> None:
        if not 200 <= response.status_code < 300:
            try:
                await response.aread()
            except Exception:
                pass
            raise ReplicateError.from_response(response)
        self.check_response(response)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


# ------------------------------------------------------------------------------------ 1.0.x EventSource


class EventSource:
    """The events of one open ``text/event-stream`` response (the 1.0.x reader).

    Iterate it (``for``, or ``async for`` over an async response) to get
    :class:`ServerSentEvent`\\ s: unknown event names are skipped, an ``error`` event raises
    :class:`~replicate.exceptions.ModelError`, ``done`` ends the iteration. It reads only the
    given response; :class:`Stream` adds reconnects.
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

    def _reader(self) -> _Reader:
        return _Reader(
            self.client,
            str(self.response.request.url),
            use_file_output=self.use_file_output,
            reconnect=False,
        )

    def __iter__(self) -> Iterator[ServerSentEvent]:
        return self._reader().iter_sync(self.response)

    def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        return self._reader().iter_async(self.response)


# ------------------------------------------------------------------------------------ Stream objects


def _deadline(timeout: float | None, clock: Callable[[], float] | None = None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return (clock or time.monotonic)() + float(timeout)


class Stream:
    """The server-sent events of one prediction: an iterator and a context manager.

    ``prediction`` is the prediction being streamed. The connection opens on the first
    ``next()``; leave early with :meth:`close` (or a ``with`` block) to release it.
    An ``error`` event raises :class:`~replicate.exceptions.ModelError`, a canceled or aborted
    prediction :class:`~replicate.exceptions.PredictionCanceledError` /
    :class:`~replicate.exceptions.PredictionAbortedError`; the ``done`` event is yielded last.
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
        url = _stream_url(prediction)
        if deadline is None:
            deadline = _deadline(timeout, clock)
        self.prediction = prediction
        self._reader = _Reader(
            client if client is not None else _client_of(prediction),
            url,
            prediction,
            use_file_output=use_file_output is not False,
            timeout=timeout,
            deadline=deadline,
            sleep=sleep,
            clock=clock,
        )
        self._iterator: Generator[ServerSentEvent, None, None] = self._reader.iter_sync()  # type: ignore[assignment]

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
    """The server-sent events of one prediction, for ``async for``; also awaitable.

    ``await replicate.async_stream(...)`` performs the create and returns this same object
    (the 1.0.x form); ``async for ev in replicate.async_stream(...)`` creates it on the first
    iteration. ``prediction`` is ``None`` until the create has happened. Use :meth:`aclose` or
    ``async with`` to release the connection when leaving early.
    """

    def __init__(
        self,
        prediction: Prediction | None = None,
        *,
        client: Client | None = None,
        use_file_output: bool | None = True,
        timeout: float | None = None,
        deadline: float | None = None,
        create: Callable[[], Awaitable[Prediction]] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if prediction is None and create is None:
            raise TypeError("AsyncStream needs a prediction or a create function")
        if prediction is not None:
            _stream_url(prediction)
        if deadline is None:
            deadline = _deadline(timeout, clock)
        self.prediction = prediction
        self._create = create
        self._created = asyncio.Lock() if create is not None else None
        self._reader = _Reader(
            client if client is not None else (_client_of(prediction) if prediction else None),
            _stream_url(prediction) if prediction is not None else None,
            prediction,
            use_file_output=use_file_output is not False,
            timeout=timeout,
            deadline=deadline,
            async_sleep=sleep,
            clock=clock,
        )
        self._iterator: Any = None

    async def _ensure(self) -> None:
        if self.prediction is not None:
            return
        assert self._create is not None and self._created is not None
        async with self._created:
            if self.prediction is None:
                prediction = await self._create()
                url = _stream_url(prediction)
                reader = self._reader
                reader.prediction = prediction
                reader.url = url
                if reader.client is None:
                    reader.client = _client_of(prediction)
                self.prediction = prediction

    async def _wait(self) -> AsyncStream:
        await self._ensure()
        return self

    def __await__(self) -> Generator[Any, None, AsyncStream]:
        return self._wait().__await__()

    def _events(self) -> AsyncIterator[ServerSentEvent]:
        iterator = self._iterator
        if iterator is None:
            prepare = self._ensure if self.prediction is None else None
            iterator = self._iterator = self._reader.iter_async(prepare=prepare)
        return iterator  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        # The async generator itself: ``async for`` skips one coroutine per event.
        return self._events()

    def __anext__(self) -> Awaitable[ServerSentEvent]:
        return self._events().__anext__()

    async def aclose(self) -> None:
        """Close the connection (idempotent). Further iteration ends at once."""
        iterator = self._iterator
        if iterator is None:
            # Never iterated: make sure a later iteration ends at once.
            async def _empty() -> AsyncIterator[ServerSentEvent]:
                return
                yield  # pragma: no cover

            self._iterator = _empty()
            return
        await iterator.aclose()

    async def __aenter__(self) -> AsyncStream:
        await self._ensure()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncStream of prediction {getattr(self.prediction, 'id', None)!r}>"


# ------------------------------------------------------------------------------------ entry points


def _prediction_stream(
    client: Client | None,
    prediction: Prediction,
    *,
    use_file_output: bool | None = None,
    timeout: float | None = None,
) -> Stream:
    """``Prediction.stream()``: a :class:`Stream` of an existing prediction's events.

    Raises :class:`~replicate.exceptions.ReplicateError` at once if the prediction has no
    ``urls.stream``. ``use_file_output=None`` means ``True``.
    """
    return Stream(prediction, client=client, use_file_output=use_file_output, timeout=timeout)


def _prediction_async_stream(
    client: Client | None,
    prediction: Prediction,
    *,
    use_file_output: bool | None = None,
    timeout: float | None = None,
) -> AsyncStream:
    """``Prediction.async_stream()``: an :class:`AsyncStream` of an existing prediction's events."""
    return AsyncStream(prediction, client=client, use_file_output=use_file_output, timeout=timeout)


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


def stream(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    **params: Any,
) -> Stream:
    """Create a prediction and return the :class:`Stream` of its events (docs/streaming.md).

    The create happens now (its errors raise here); the stream connects on the first
    ``next()``. ``ref`` is ``"owner/name"``, ``"owner/name:version"``, a version id, or a
    ``Model``/``Version``/``ModelVersionIdentifier``/``Deployment``. ``params`` are the create
    parameters of :class:`~replicate.prediction.Predictions.CreatePredictionParams` (``stream``
    defaults to ``True``; no ``wait`` by default). ``timeout`` bounds the whole stream, create
    included: the prediction is then canceled and
    :class:`~replicate.exceptions.PredictionTimeoutError` raised.
    """
    from .prediction import _create

    deadline = _deadline(timeout)
    path, version, params = _create_args(ref, params, timeout)
    prediction = _create(client, path, input, params, version, deadline=deadline, where="stream")
    return Stream(
        prediction,
        client=client,
        use_file_output=use_file_output,
        timeout=timeout,
        deadline=deadline,
    )


def async_stream(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    **params: Any,
) -> AsyncStream:
    """Async twin of :func:`stream`: the :class:`AsyncStream` of a prediction to create.

    Argument errors raise here; the create itself happens on ``await`` (the 1.0.x form
    ``async for ev in await replicate.async_stream(...)``) or on the first iteration
    (``async for ev in replicate.async_stream(...)``).
    """
    from .prediction import _async_create, _check_create_params

    deadline = _deadline(timeout)
    path, version, params = _create_args(ref, params, timeout)
    _check_create_params(params, "async_stream")

    async def create() -> Prediction:
        return await _async_create(
            client, path, input, params, version, deadline=deadline, where="async_stream"
        )

    return AsyncStream(
        client=client,
        use_file_output=use_file_output,
        timeout=timeout,
        deadline=deadline,
        create=create,
    )
