"""The reader behind :mod:`replicate.stream`: one prediction's event stream across reconnects.

Three concerns, one small class each, composed by :class:`Reader`:

* :class:`~replicate._stream_policy.Deadline` — the overall ``timeout=``;
* :class:`~replicate._stream_policy.Resume` — the connection policy (requests, which answers
  are usable, fatal or worth a retry, reconnect delays);
* :class:`Interpreter` — the events: decoding bytes (:class:`replicate._sse.SSEDecoder`),
  skipping unknown names and replayed ids, file outputs, and what ``error``/``done`` mean.

The I/O shells :meth:`Reader.batches` / :meth:`Reader.abatches` open connections, feed the
decoder and sleep; they yield the events of each received chunk as a list, so that the
generators users iterate (:func:`sync_events`, :func:`async_events`, ``Prediction.stream``) hand
out events with a plain list iteration. The event class is passed in (``replicate.stream``'s
``ServerSentEvent``), which keeps this module free of an import cycle (docs/streaming.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from ._sse import SSEDecoder
from ._stream_policy import DEFAULT_RETRY_DELAY as DEFAULT_RETRY_DELAY
from ._stream_policy import MAX_CONSECUTIVE_FAILURES as MAX_CONSECUTIVE_FAILURES
from ._stream_policy import MAX_RETRY_DELAY as MAX_RETRY_DELAY
from ._stream_policy import Deadline, Resume
from .exceptions import (
    ModelError,
    ModelStreamError,
    PredictionAbortedError,
    PredictionCanceledError,
    ReplicateError,
    wrap_transport_error,
)
from .helpers import FileOutput, _is_file_url

if TYPE_CHECKING:
    from .client import Client

logger = logging.getLogger("replicate")

_new = object.__new__


# ------------------------------------------------------------------------------------ helpers


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


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


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
