"""The connection policy of one event stream: the overall deadline and reconnects.

* :class:`Deadline` — the overall ``timeout=``: caps every connection's timeouts and reconnect
  delays, and when it passes cancels the prediction (best effort) and raises
  :class:`~replicate.exceptions.PredictionTimeoutError`.
* :class:`Resume` — the request (``Accept: text/event-stream``, ``Cache-Control: no-store``, the
  API token, ``Last-Event-ID`` on reconnects, >= 60 s of read idleness), which answers are
  usable, fatal or worth a retry, and the reconnect delay (the server's ``retry``, default 1 s,
  doubled per consecutive failure, capped at 30 s; five consecutive failures raise the last
  error; an idle timeout is not a failure).

Neither does I/O: :class:`replicate._stream_reader.Reader` asks them and acts
(docs/streaming.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from ._http import DEADLINE_EXTENSION, IDEMPOTENT_EXTENSION, STREAM_MIN_READ, with_min_read
from ._sse import SSEDecoder
from .exceptions import APIResponseValidationError, PredictionTimeoutError, ReplicateError

if TYPE_CHECKING:
    from .client import Client

logger = logging.getLogger("replicate")

#: Seconds before a reconnect when the server sent no ``retry`` field.
DEFAULT_RETRY_DELAY = 1.0
#: Upper bound of the reconnect delay, in seconds.
MAX_RETRY_DELAY = 30.0
#: Consecutive failed connection attempts after which the last error is raised.
MAX_CONSECUTIVE_FAILURES = 5

# ------------------------------------------------------------------------------------ helpers


def safe_url(url: str | httpx.URL) -> str:
    """The URL without its query string (stream URLs may carry credentials), for logs/errors."""
    try:
        return str(httpx.URL(url).copy_with(query=None, fragment=None))
    except Exception:
        return "<stream URL>"


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").partition(";")[0].strip().lower()


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
