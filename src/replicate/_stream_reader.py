"""The reader behind :mod:`replicate.stream`: one prediction's event stream across reconnects.

Three concerns, one small class each, composed by :class:`Reader`:

* :class:`Deadline` — the overall ``timeout=``: caps every connection's timeouts and reconnect
  delays, and when it passes cancels the prediction (best effort) and raises
  :class:`~replicate.exceptions.PredictionTimeoutError`.
* :class:`Resume` — the connection policy: the request (``Accept: text/event-stream``,
  ``Cache-Control: no-store``, the API token, ``Last-Event-ID`` on reconnects, >= 60 s of read
  idleness), which answers are usable, fatal or worth a retry, and the reconnect delay (the
  server's ``retry``, default 1 s, doubled per consecutive failure, capped at 30 s; five
  consecutive failures raise the last error; an idle timeout is not a failure).
* :class:`Interpreter` — the events: decoding bytes (:class:`replicate._sse.SSEDecoder`),
  skipping unknown names and replayed ids, file outputs, and what ``error``/``done`` mean.

The I/O shells :meth:`Reader.batches` / :meth:`Reader.abatches` open connections, feed the
decoder and sleep; they yield the events of each received chunk as a list, so that the
generators users iterate (:func:`sync_events`, :func:`async_events`, ``Prediction.stream``) hand
out events with a plain list iteration. The event class is passed in (``replicate.stream``'s
``ServerSentEvent``), which keeps this module free of an import cycle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from ._http import DEADLINE_EXTENSION, IDEMPOTENT_EXTENSION, STREAM_MIN_READ, with_min_read
from ._sse import SSEDecoder
from .exceptions import (
    APIResponseValidationError,
    ModelError,
    ModelStreamError,
    PredictionAbortedError,
    PredictionCanceledError,
    PredictionTimeoutError,
    ReplicateError,
    wrap_transport_error,
)
from .helpers import FileOutput, _is_file_url

if TYPE_CHECKING:
    from .client import Client

logger = logging.getLogger("replicate")

#: Seconds before a reconnect when the server sent no ``retry`` field.
DEFAULT_RETRY_DELAY = 1.0
#: Upper bound of the reconnect delay, in seconds.
MAX_RETRY_DELAY = 30.0
#: Consecutive failed connection attempts after which the last error is raised.
MAX_CONSECUTIVE_FAILURES = 5

_new = object.__new__


# ------------------------------------------------------------------------------------ helpers


def safe_url(url: str | httpx.URL) -> str:
    """The URL without its query string (stream URLs may carry credentials), for logs/errors."""
    try:
        return str(httpx.URL(url).copy_with(query=None, fragment=None))
    except Exception:
        return "<stream URL>"


def stream_url(prediction: Any) -> str:
    """``prediction.urls["stream"]``, or the 1.0.x "does not support streaming" error."""
    urls = getattr(prediction, "urls", None)
    url = urls.get("stream") if isinstance(urls, Mapping) else None
    if not url or not isinstance(url, str):
        raise ReplicateError("Model does not support streaming")
    return url


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


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


# ------------------------------------------------------------------------------------ deadline


class Deadline:
    """The overall deadline of a stream (``at`` on ``clock``; ``None``: no deadline)."""

    __slots__ = ("at", "clock", "timeout")

    def __init__(
        self, at: float | None, timeout: float | None, clock: Callable[[], float] | None
    ) -> None:
        self.at = at
        self.timeout = timeout
        self.clock = clock or time.monotonic

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - self.clock()

    def passed(self) -> bool:
        return self.at is not None and self.clock() >= self.at

    def cap_timeout(self, timeout: httpx.Timeout) -> httpx.Timeout:
        """``timeout`` with every phase capped by the time left."""
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

    def cap_delay(self, delay: float) -> float:
        remaining = self.remaining()
        return delay if remaining is None else max(min(delay, remaining), 0.0)

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

    def expire(self, prediction: Any) -> NoReturn:
        """The deadline passed: cancel ``prediction`` (best effort) and raise."""
        canceled = False
        cancel = getattr(prediction, "cancel", None)
        if cancel is not None:
            try:
                cancel()
                canceled = True
            except Exception as exc:
                logger.warning("Could not cancel prediction after its timeout: %s", exc)
        raise PredictionTimeoutError(prediction, self.timeout, canceled)

    async def aexpire(self, prediction: Any) -> NoReturn:
        canceled = False
        cancel = getattr(prediction, "async_cancel", None)
        if cancel is not None:
            try:
                await cancel()
                canceled = True
            except Exception as exc:
                logger.warning("Could not cancel prediction after its timeout: %s", exc)
        raise PredictionTimeoutError(prediction, self.timeout, canceled)


# ------------------------------------------------------------------------------------ resume


class Resume:
    """The connection policy across reconnects (requests, answers, delays); no I/O of its own."""

    def __init__(self, url: str | None, decoder: SSEDecoder, *, reconnect: bool) -> None:
        self.url = url
        self.decoder = decoder
        self.reconnect = reconnect
        self.failures = 0
        self.connections = 0
        self.last_error: BaseException | None = None
        self.retry_after: float | None = None

    def build_request(
        self, client: Client, http: httpx.Client | httpx.AsyncClient, deadline: Deadline
    ) -> httpx.Request:
        assert self.url is not None
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        headers.update(client._download_auth(self.url, issued=True))
        last_id = self.decoder.last_event_id
        if last_id:
            headers["Last-Event-ID"] = last_id
        extensions: dict[str, Any] = {IDEMPOTENT_EXTENSION: False}
        if deadline.at is not None:
            extensions[DEADLINE_EXTENSION] = deadline.at
        timeout = deadline.cap_timeout(with_min_read(client._config.timeout, STREAM_MIN_READ))
        return http.build_request(
            "GET", self.url, headers=headers, timeout=timeout, extensions=extensions
        )

    def connect_failed(self, error: BaseException) -> None:
        """A transport error, 429 or 5xx while connecting: count it; raise if fatal."""
        self.last_error = error
        if not self.reconnect:
            raise error
        self.retry_after = getattr(error, "retry_after", None)
        self.failures += 1
        url = safe_url(self.url or "")
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            logger.warning(
                "Giving up on the event stream %s after %d consecutive failures: %s",
                url,
                self.failures,
                error,
            )
            raise error
        logger.info(
            "Event stream %s: connection failed (%s); retrying (%d/%d)",
            url,
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
                    f"Expected a text/event-stream response from {safe_url(response.request.url)}, "
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
                safe_url(self.url or ""),
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
        url = safe_url(self.url or "")
        if isinstance(error, httpx.ReadTimeout):
            logger.info("Event stream %s: idle for too long; reconnecting", url)
            return
        if error is None:
            error = ReplicateError("The event stream ended before its done event", status=None)
            logger.info("Event stream %s ended before its done event; reconnecting", url)
        else:
            logger.info("Event stream %s: connection lost (%s); reconnecting", url, error)
        if not progressed:
            self.connect_failed(error)

    def delay(self, deadline: Deadline) -> float:
        """Seconds to wait before the next connection attempt (capped by the deadline)."""
        retry = self.decoder.retry
        base = DEFAULT_RETRY_DELAY if retry is None else retry / 1000.0
        delay = min(base * 2.0 ** max(self.failures - 1, 0), MAX_RETRY_DELAY)
        if self.retry_after is not None:
            # A 429's Retry-After, when longer (still capped).
            delay = max(delay, min(self.retry_after, MAX_RETRY_DELAY))
            self.retry_after = None
        return deadline.cap_delay(delay)


# ------------------------------------------------------------------------------------ events


class Interpreter:
    """Turns received bytes into events: names, replayed ids, file outputs, terminal events."""

    def __init__(self, event_cls: Any, client: Client | None, *, use_file_output: bool) -> None:
        self.event_cls = event_cls
        kinds = event_cls.EventType
        self.kinds: dict[str, Any] = {kind.value: kind for kind in kinds}
        self.output = kinds.OUTPUT
        self.logs = kinds.LOGS
        self.error = kinds.ERROR
        self.done = kinds.DONE
        self.client = client
        self.use_file_output = use_file_output
        self.decoder = SSEDecoder()
        self.seen: set[str] = set()
        #: The error an ``error``/``done`` event of the last chunk calls for, raised after the
        #: events that came before it in the same chunk have been handed out.
        self.pending: BaseException | None = None

    def event(self, kind: Any, data: Any, id: str, retry: int | None) -> Any:
        ev = _new(self.event_cls)
        ev.event = kind
        ev.data = data
        ev.id = id
        ev.retry = retry
        return ev

    def decode(self, chunk: bytes, prediction: Any) -> tuple[list[Any], bool]:
        """The events of ``chunk`` and whether the stream has finished (``done`` or an error).

        On an error, the events before it are returned and the error is left in
        :attr:`pending`.
        """
        batch: list[Any] = []
        append = batch.append
        kinds = self.kinds.get
        seen = self.seen
        seen_add = seen.add
        use_file_output = self.use_file_output
        new = _new
        cls = self.event_cls
        output = self.output
        logs = self.logs
        for name, data, eid, retry in self.decoder.feed(chunk):
            kind = kinds(name)
            if kind is None:
                logger.debug("Skipping event %r", name)
                continue
            if eid:
                if eid in seen:
                    continue
                seen_add(eid)
            if kind is output:
                if use_file_output and ":" in data:
                    data = self.file_output(data)
            elif kind is not logs:
                try:
                    append(self.terminal(kind, data, eid, retry, prediction))
                except ModelError as exc:
                    self.pending = exc
                return batch, True
            ev = new(cls)
            ev.event = kind
            ev.data = data
            ev.id = eid
            ev.retry = retry
            append(ev)
        return batch, False

    def file_output(self, data: str) -> Any:
        return FileOutput(data, self.client) if _is_file_url(data, self.client) else data

    def terminal(self, kind: Any, data: str, id: str, retry: int | None, prediction: Any) -> Any:
        """Handle an ``error`` or ``done`` event: raise, or return the ``done`` event to yield."""
        if kind is self.error:
            self._fail(prediction, "failed", _detail_of(data), ModelStreamError)
        reason = _done_reason(data)
        if reason == "canceled":
            self._fail(prediction, "canceled", None, PredictionCanceledError)
        if reason == "aborted":
            self._fail(prediction, "aborted", None, PredictionAbortedError)
        if reason == "error":
            self._fail(prediction, "failed", _detail_of(data), ModelStreamError)
        if reason:
            logger.debug("Event stream done with reason %r", reason)
        return self.event(self.done, data, id, retry)

    def _fail(
        self, prediction: Any, status: str, error: str | None, cls: type[ModelError]
    ) -> NoReturn:
        if prediction is None:
            raise cls(_standalone_prediction(self.client, status, error))
        try:
            prediction.status = status
            if error is not None or status == "failed":
                prediction.error = error
        except Exception:  # a frozen or foreign object: report it as it is
            pass
        raise cls(prediction)


# ------------------------------------------------------------------------------------ the reader


class Reader:
    """One event stream: the three parts above plus the sync and async I/O shells.

    ``reconnect=False`` reads only a given response (the 1.0.x ``EventSource``).
    """

    def __init__(
        self,
        event_cls: Any,
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
        self.prediction = prediction
        self.sleep = sleep or _sleep
        self.async_sleep = async_sleep or _async_sleep
        self.deadline = Deadline(deadline, timeout, clock)
        self.events = Interpreter(event_cls, client, use_file_output=bool(use_file_output))
        self.resume = Resume(url, self.events.decoder, reconnect=reconnect)

    # ---- sync shell -----------------------------------------------------------------------

    def _check_deadline(self) -> None:
        if self.deadline.passed():
            self.deadline.expire(self.prediction)

    def _connect_sync(self, http: httpx.Client) -> httpx.Response:
        assert self.client is not None
        resume = self.resume
        while True:
            self._check_deadline()
            request = resume.build_request(self.client, http, self.deadline)
            try:
                response = http.send(request, stream=True)
            except httpx.TransportError as exc:
                resume.connect_failed(wrap_transport_error(exc))
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
                    error = resume.check_response(response)
                except BaseException:
                    response.close()
                    raise
                if error is None:
                    return response
                resume.connect_failed(error)
            self._pause_sync()

    def _pause_sync(self) -> None:
        delay = self.resume.delay(self.deadline)
        if delay > 0:
            self.sleep(delay)
        self._check_deadline()

    def _check_given(self, response: httpx.Response) -> None:
        """Validate a response handed to ``EventSource``."""
        if not 200 <= response.status_code < 300:
            try:
                response.read()
            except Exception:
                pass
            raise ReplicateError.from_response(response)
        self.resume.check_response(response)

    def batches(self, response: httpx.Response | None = None) -> Iterator[list[Any]]:
        """Yield the events of each chunk, reconnecting as needed (or only those of ``response``)."""
        events = self.events
        decode = events.decode
        deadline = self.deadline
        has_deadline = deadline.at is not None
        resume = self.resume
        while True:
            if response is None:
                # Asked per connection: a client closed meanwhile is rebuilt, not reused.
                assert self.client is not None
                response = self._connect_sync(self.client._get_sync_client(download=True))
            else:
                self._check_given(response)
            progressed = False
            error: BaseException | None = None
            try:
                for chunk in response.iter_bytes():
                    if has_deadline:
                        self._check_deadline()
                        deadline.refresh_read_timeout(response)
                    batch, finished = decode(chunk, self.prediction)
                    if batch:
                        progressed = True
                        yield batch
                    if finished:
                        if events.pending is not None:
                            raise events.pending
                        return
            except httpx.TransportError as exc:
                error = wrap_transport_error(exc)
            finally:
                response.close()
                events.decoder.reset()
            response = None
            if resume.reconnect:
                self._check_deadline()
            resume.connection_ended(error, progressed)
            if not resume.reconnect:
                return
            self._pause_sync()

    # ---- async shell ----------------------------------------------------------------------

    async def _acheck_deadline(self) -> None:
        if self.deadline.passed():
            await self.deadline.aexpire(self.prediction)

    async def _connect_async(self, http: httpx.AsyncClient) -> httpx.Response:
        assert self.client is not None
        resume = self.resume
        while True:
            await self._acheck_deadline()
            request = resume.build_request(self.client, http, self.deadline)
            try:
                response = await http.send(request, stream=True)
            except httpx.TransportError as exc:
                resume.connect_failed(wrap_transport_error(exc))
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
                    error = resume.check_response(response)
                except BaseException:
                    await response.aclose()
                    raise
                if error is None:
                    return response
                resume.connect_failed(error)
            await self._pause_async()

    async def _pause_async(self) -> None:
        delay = self.resume.delay(self.deadline)
        if delay > 0:
            await self.async_sleep(delay)
        await self._acheck_deadline()

    async def _acheck_given(self, response: httpx.Response) -> None:
        if not 200 <= response.status_code < 300:
            try:
                await response.aread()
            except Exception:
                pass
            raise ReplicateError.from_response(response)
        self.resume.check_response(response)

    async def abatches(self, response: httpx.Response | None = None) -> AsyncIterator[list[Any]]:
        """Async twin of :meth:`batches`."""
        events = self.events
        decode = events.decode
        deadline = self.deadline
        has_deadline = deadline.at is not None
        resume = self.resume
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
                        await self._acheck_deadline()
                        deadline.refresh_read_timeout(response)
                    batch, finished = decode(chunk, self.prediction)
                    if batch:
                        progressed = True
                        yield batch
                    if finished:
                        if events.pending is not None:
                            raise events.pending
                        return
            except httpx.TransportError as exc:
                error = wrap_transport_error(exc)
            finally:
                await response.aclose()
                events.decoder.reset()
            response = None
            if resume.reconnect:
                await self._acheck_deadline()
            resume.connection_ended(error, progressed)
            if not resume.reconnect:
                return
            await self._pause_async()


# ------------------------------------------------------------------------------------ generators


def sync_events(reader: Reader, response: httpx.Response | None = None) -> Iterator[Any]:
    """The events of ``reader`` one by one: a real generator (``close()`` closes the connection)."""
    batches = reader.batches(response)
    try:
        for batch in batches:
            yield from batch
    finally:
        batches.close()  # type: ignore[attr-defined]


async def async_events(
    reader: Reader, response: httpx.Response | None = None
) -> AsyncIterator[Any]:
    """Async twin of :func:`sync_events`: an async generator (``aclose()`` closes the connection)."""
    batches = reader.abatches(response)
    try:
        async for batch in batches:
            for event in batch:
                yield event
    finally:
        await batches.aclose()  # type: ignore[attr-defined]
