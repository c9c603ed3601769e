"""The retry policy and :class:`RetryTransport` (docs/retries.md).

The module is split in two layers:

* **Pure decisions** (no I/O, no sleeping): :func:`parse_retry_after`, :func:`backoff_delay`,
  :func:`is_idempotent`, :func:`is_replayable`, :func:`retry_after_from_body` and
  :meth:`RetryTransport.decide`, which answers "retry this outcome after how many seconds, or not at
  all?".
* **Thin I/O shells**: :meth:`RetryTransport.handle_request` and
  :meth:`RetryTransport.handle_async_request`, which send, ask :meth:`~RetryTransport.decide`,
  rewind the request body, close the discarded response, log and sleep.

What is retried (docs/retries.md, "What is retried"):

* Idempotent requests (methods in ``retryable_methods``, by default GET, HEAD, OPTIONS, PUT,
  DELETE, TRACE, QUERY, or requests whose ``extensions["replicate.idempotent"]`` is true) are
  retried on a status in ``retry_status_codes`` (default 408, 429, 500, 502, 503, 504) and on the
  transport errors ``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``, ``ProxyError``,
  ``ReadTimeout``, ``ReadError``, ``WriteError`` and ``RemoteProtocolError``.
* Every other request (POST creates, uploads, PATCH) is retried only when the server cannot have
  acted on it: a 429 answer, or a ``ConnectError`` / ``ConnectTimeout`` / ``PoolTimeout`` /
  ``ProxyError``, which httpx raises while acquiring or establishing the connection, that is
  before any byte of the request was sent.
* A request is re-sent only when its body can be replayed (see :func:`is_replayable`).

Request extensions understood by the transport:

* ``"replicate.idempotent"``: ``True`` marks a request idempotent whatever its method (e.g. a
  prediction cancel); ``False`` marks it non-idempotent even for an idempotent method.
* ``"replicate.deadline"``: a :func:`time.monotonic` value; no retry is made whose delay would end
  after it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timezone
from typing import Any, Protocol, runtime_checkable

import httpx

try:  # httpx's multipart stream is private; its absence only makes multipart non-replayable.
    from httpx._multipart import MultipartStream as _MultipartStream
except ImportError:  # pragma: no cover - depends on the httpx version
    _MultipartStream = None  # type: ignore[assignment,misc]

__all__ = [
    "DEFAULT_RETRYABLE_METHODS",
    "DEFAULT_RETRY_STATUS_CODES",
    "IDEMPOTENT_EXTENSION",
    "DEADLINE_EXTENSION",
    "ReplayableStream",
    "RetryTransport",
    "backoff_delay",
    "is_idempotent",
    "is_replayable",
    "parse_retry_after",
    "rewind_stream",
    "retry_after_from_body",
]

logger = logging.getLogger("replicate")

#: Methods retried by default (RFC 9110 idempotent methods plus QUERY).
DEFAULT_RETRYABLE_METHODS: frozenset[str] = frozenset(
    {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", "QUERY"}
)
#: Statuses retried by default for idempotent requests.
DEFAULT_RETRY_STATUS_CODES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})

#: Request extension marking a request (non-)idempotent regardless of its method.
IDEMPOTENT_EXTENSION = "replicate.idempotent"
#: Request extension holding a :func:`time.monotonic` deadline for the whole operation.
DEADLINE_EXTENSION = "replicate.deadline"

#: Transport errors after which an idempotent request is retried.
_IDEMPOTENT_RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
#: Transport errors raised before the request was sent: safe to retry for any request.
_PRE_SEND_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)

#: Largest response body read to look for a JSON ``retry_after`` field.
MAX_BODY_BYTES_FOR_RETRY_AFTER = 64 * 1024
#: Exponents above this cannot change a capped delay and would overflow a float.
_MAX_EXPONENT = 64

_SECONDS_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
_BODY_NUMBER_RE = re.compile(r"^\s*-?[0-9]+(?:\.[0-9]+)?\s*$")


def _sleep(delay: float) -> None:
    """The default sync sleep; tests may replace it (``monkeypatch.setattr``) to skip waits."""
    time.sleep(delay)


async def _async_sleep(delay: float) -> None:
    """The default async sleep; tests may replace it to skip waits."""
    await asyncio.sleep(delay)


# --------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------


def parse_retry_after(
    value: str | None, now: float | None = None, *, cap: float | None = None
) -> float | None:
    """Parse a ``Retry-After`` header value into a delay in seconds.

    Accepts a non-negative integer or decimal number of seconds, or an HTTP-date (RFC 9110
    ``IMF-fixdate`` and the obsolete RFC 850 and asctime forms; a date without a zone is UTC),
    which is converted to seconds from ``now`` (a POSIX timestamp, default :func:`time.time`).
    The result is at least 0 and, when ``cap`` is given, at most ``cap``. Returns ``None`` for a
    missing or unusable value.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS_RE.match(text):
        try:
            seconds = float(text)
        except (ValueError, OverflowError):  # pragma: no cover - the regex admits floats only
            return None
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:  # pragma: no cover - very old Pythons returned None
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = time.time() if now is None else now
        try:
            seconds = when.timestamp() - current
        except (OverflowError, ValueError, OSError):  # pragma: no cover - absurd dates
            return None
    if not math.isfinite(seconds):
        return None
    seconds = max(seconds, 0.0)
    if cap is not None:
        seconds = min(seconds, cap)
    return seconds


def retry_after_from_body(content: bytes) -> float | None:
    """Return the numeric ``retry_after`` field of a JSON object body, or ``None``.

    Accepts a JSON number (not a boolean) or a string holding a decimal number; negative values
    become 0. Any decoding problem yields ``None``.
    """
    if not content:
        return None
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("retry_after")
    if isinstance(value, bool):
        return None
    numeric = isinstance(value, (int, float)) or (
        isinstance(value, str) and _BODY_NUMBER_RE.match(value) is not None
    )
    if not numeric:
        return None
    seconds = float(value)  # type: ignore[arg-type]
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def backoff_delay(
    attempt: int,
    *,
    backoff_factor: float,
    jitter_ratio: float,
    max_backoff_wait: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Exponential backoff with uniform jitter after send number ``attempt`` (1-based).

    ``min(backoff_factor * 2**(attempt-1) * (1 + uniform(-jitter_ratio, jitter_ratio)),
    max_backoff_wait)``, never negative.
    """
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    base = backoff_factor * (2.0**exponent)
    jitter = uniform(-jitter_ratio, jitter_ratio) if jitter_ratio else 0.0
    return max(0.0, min(base * (1.0 + jitter), max_backoff_wait))


def is_idempotent(request: httpx.Request, retryable_methods: Iterable[str]) -> bool:
    """Whether ``request`` may be retried after the server might have acted on it.

    ``request.extensions["replicate.idempotent"]`` decides when set (``True``/``False``);
    otherwise the method must be in ``retryable_methods``.
    """
    marker = request.extensions.get(IDEMPOTENT_EXTENSION)
    if marker is not None:
        return bool(marker)
    return request.method.upper() in retryable_methods


@runtime_checkable
class ReplayableStream(Protocol):
    """A request body stream that can be sent again.

    Upload streams implement :meth:`rewind`, which must put the stream back at its start (or
    raise if that is impossible). A stream may also expose ``replayable = False`` to say that it
    cannot be replayed at the moment (e.g. its source is not seekable).
    """

    def rewind(self) -> None:
        """Reset the stream so that iterating it again yields the whole body from the start."""


def _file_part_is_replayable(file: Any) -> bool:
    if isinstance(file, (str, bytes)):
        return True
    seekable = getattr(file, "seekable", None)
    if seekable is None or not hasattr(file, "seek"):
        return False
    try:
        return bool(seekable())
    except (OSError, ValueError):  # closed or broken file objects
        return False


def is_replayable(stream: Any) -> bool:
    """Whether a request body ``stream`` can be sent again (pure inspection, no I/O).

    Replayable: :class:`httpx.ByteStream` (empty bodies, bytes, JSON, form data, and every request
    read into memory), a multipart stream whose file parts are ``str``/``bytes`` or seekable
    files, and any :class:`ReplayableStream` that does not declare ``replayable = False``.
    Generators, iterators, plain file objects and unknown streams are not.
    """
    if getattr(stream, "replayable", True) is False:
        return False
    if isinstance(stream, httpx.ByteStream):
        return True
    if isinstance(stream, ReplayableStream):
        return True
    if _MultipartStream is not None and isinstance(stream, _MultipartStream):
        return all(
            _file_part_is_replayable(field.file)
            for field in stream.fields
            if hasattr(field, "file")
        )
    return False


def rewind_stream(stream: Any) -> bool:
    """Prepare a replayable ``stream`` to be sent again; ``False`` if that failed.

    Byte streams need nothing; multipart file parts are rewound to their start; a
    :class:`ReplayableStream` has its ``rewind()`` called.
    """
    if not is_replayable(stream):
        return False
    try:
        if isinstance(stream, httpx.ByteStream):
            return True
        if _MultipartStream is not None and isinstance(stream, _MultipartStream):
            for field in stream.fields:
                file = getattr(field, "file", None)
                if file is not None and not isinstance(file, (str, bytes)):
                    file.seek(0)
            return True
        stream.rewind()
        return True
    except Exception as exc:  # a failed rewind means "do not resend", never a crash
        logger.debug("Not retrying: could not rewind the request body (%s)", type(exc).__name__)
        return False


def _url_for_log(url: httpx.URL) -> str:
    """The URL without user info, query string or fragment (they may carry secrets)."""
    port = f":{url.port}" if url.port is not None else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}{url.path}"


def _describe(outcome: httpx.Response | Exception) -> str:
    if isinstance(outcome, httpx.Response):
        return f"status {outcome.status_code}"
    return type(outcome).__name__


def _in_memory_body(response: httpx.Response) -> bytes | None:
    """The decoded body if it is already in memory (never performs I/O), else ``None``."""
    try:
        return response.content  # set once the body was read
    except httpx.ResponseNotRead:
        pass
    stream = response.stream
    if isinstance(stream, httpx.ByteStream):
        raw = b"".join(stream)
        copy = httpx.Response(response.status_code, headers=response.headers, content=raw)
        try:
            return copy.content
        except httpx.DecodingError:
            return None
    return None


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _is_json(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json")


def _rebuild_response(
    request: httpx.Request, response: httpx.Response, raw: bytes
) -> httpx.Response:
    """A fresh response with the same status/headers/extensions over an in-memory raw body."""
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(raw),
        extensions=response.extensions,
        request=request,
    )


# --------------------------------------------------------------------------------------------
# The transport
# --------------------------------------------------------------------------------------------


class RetryTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport that retries failed requests per the retry policy of docs/retries.md.

    Wraps another transport (sync, async, or both) and implements both interfaces. See the module
    docstring for what is retried. ``max_attempts`` counts sends in total. The delay before a
    retry is the server's ``Retry-After`` (seconds or HTTP-date; for 429 also a JSON body
    ``retry_after``), else exponential backoff with uniform jitter, capped at
    ``max_backoff_wait``. When attempts run out the last response is returned or the last
    transport error propagates.

    Args:
        wrapped_transport: the transport that performs the requests.
        max_attempts: total sends per request (>= 1).
        max_backoff_wait: upper bound of any single delay, in seconds.
        backoff_factor: base of the exponential backoff, in seconds.
        jitter_ratio: relative jitter in [0, 0.5].
        retryable_methods: idempotent methods; empty/``None`` means the default set.
        retry_status_codes: statuses retried for idempotent requests; empty/``None`` means the
            default set. A 429 is retried for other requests only if it is in this set.
    """

    MAX_BACKOFF_WAIT = 60
    RETRYABLE_METHODS = DEFAULT_RETRYABLE_METHODS
    RETRYABLE_STATUS_CODES = DEFAULT_RETRY_STATUS_CODES

    def __init__(
        self,
        wrapped_transport: httpx.BaseTransport | httpx.AsyncBaseTransport,
        *,
        max_attempts: int = 10,
        max_backoff_wait: float = MAX_BACKOFF_WAIT,
        backoff_factor: float = 0.1,
        jitter_ratio: float = 0.1,
        retryable_methods: Iterable[str] | None = None,
        retry_status_codes: Iterable[int] | None = None,
        _sleep: Callable[[float], None] | None = None,
        _async_sleep: Callable[[float], Awaitable[None]] | None = None,
        _clock: Callable[[], float] | None = None,
        _now: Callable[[], float] | None = None,
        _uniform: Callable[[float, float], float] | None = None,
    ) -> None:
        if (
            isinstance(max_attempts, float)
            and math.isfinite(max_attempts)
            and max_attempts == int(max_attempts)
        ):
            max_attempts = int(max_attempts)  # 1.0.x accepted e.g. 5.0
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise TypeError(f"max_attempts must be an int, got {max_attempts!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if not 0 <= jitter_ratio <= 0.5:
            raise ValueError(f"jitter_ratio must be between 0 and 0.5, got {jitter_ratio}")
        if not max_backoff_wait >= 0:
            raise ValueError(f"max_backoff_wait must be >= 0, got {max_backoff_wait}")
        if not backoff_factor >= 0:
            raise ValueError(f"backoff_factor must be >= 0, got {backoff_factor}")

        self._wrapped_transport = wrapped_transport
        self.max_attempts = max_attempts
        self.max_backoff_wait = max_backoff_wait
        self.backoff_factor = backoff_factor
        self.jitter_ratio = jitter_ratio
        methods = frozenset(m.upper() for m in retryable_methods or ())
        self.retryable_methods: frozenset[str] = methods or self.RETRYABLE_METHODS
        codes = frozenset(int(c) for c in retry_status_codes or ())
        self.retry_status_codes: frozenset[int] = codes or self.RETRYABLE_STATUS_CODES
        # Injectable for tests; looked up at call time so module-level patching also works.
        self._sleep = _sleep
        self._async_sleep = _async_sleep
        self._clock = _clock
        self._now = _now
        self._uniform = _uniform

    # ---- pure decision -------------------------------------------------------------------

    def decide(
        self,
        request: httpx.Request,
        outcome: httpx.Response | Exception,
        attempt: int,
    ) -> float | None:
        """Return the delay before re-sending ``request``, or ``None`` to stop.

        ``outcome`` is the response or exception of send number ``attempt`` (1-based). Looks at
        the method and idempotency marker, the status or error class, the remaining attempts, the
        replayability of the body, ``Retry-After`` (and, for 429, an in-memory JSON body's
        ``retry_after``) and the request's deadline. Performs no I/O.
        """
        if attempt >= self.max_attempts:
            return None
        idempotent = is_idempotent(request, self.retryable_methods)
        if isinstance(outcome, httpx.Response):
            status = outcome.status_code
            if status not in self.retry_status_codes:
                return None
            if not idempotent and status != 429:
                return None
        elif isinstance(outcome, Exception):
            errors = _IDEMPOTENT_RETRY_ERRORS if idempotent else _PRE_SEND_ERRORS
            if not isinstance(outcome, errors):
                return None
        else:  # pragma: no cover - defensive
            return None
        if not is_replayable(request.stream):
            logger.debug(
                "Not retrying %s %s after %s: the request body cannot be replayed",
                request.method,
                _url_for_log(request.url),
                _describe(outcome),
            )
            return None

        delay = self._server_delay(outcome)
        if delay is None:
            delay = backoff_delay(
                attempt,
                backoff_factor=self.backoff_factor,
                jitter_ratio=self.jitter_ratio,
                max_backoff_wait=self.max_backoff_wait,
                uniform=self._uniform or random.uniform,
            )

        deadline = request.extensions.get(DEADLINE_EXTENSION)
        if deadline is not None:
            clock = self._clock or time.monotonic
            if clock() + delay > deadline:
                logger.debug(
                    "Not retrying %s %s after %s: a %.2fs delay would pass the deadline",
                    request.method,
                    _url_for_log(request.url),
                    _describe(outcome),
                    delay,
                )
                return None
        return delay

    def _server_delay(self, outcome: httpx.Response | Exception) -> float | None:
        """The delay the server asked for, capped, or ``None``."""
        if not isinstance(outcome, httpx.Response):
            return None
        now = (self._now or time.time)()
        delay = parse_retry_after(
            outcome.headers.get("retry-after"), now, cap=self.max_backoff_wait
        )
        if delay is None and outcome.status_code == 429:
            content = _in_memory_body(outcome)
            if content is not None:
                seconds = retry_after_from_body(content)
                if seconds is not None:
                    delay = min(seconds, self.max_backoff_wait)
        return delay

    def _wants_body(self, request: httpx.Request, response: httpx.Response, attempt: int) -> bool:
        """Whether a 429 body should be read to find ``retry_after`` (only small JSON bodies)."""
        if response.status_code != 429 or attempt >= self.max_attempts:
            return False
        if parse_retry_after(response.headers.get("retry-after"), 0.0) is not None:
            return False
        if not _is_json(response):
            return False
        if _in_memory_body(response) is not None:
            return False
        length = _content_length(response)
        return length is not None and length <= MAX_BODY_BYTES_FOR_RETRY_AFTER

    def _log_retry(
        self,
        request: httpx.Request,
        outcome: httpx.Response | Exception,
        attempt: int,
        delay: float,
    ) -> None:
        logger.info(
            "Retrying %s %s after %s (attempt %d of %d) in %.2fs",
            request.method,
            _url_for_log(request.url),
            _describe(outcome),
            attempt + 1,
            self.max_attempts,
            delay,
        )

    # ---- sync shell ----------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the wrapped transport, retrying per the policy."""
        transport = self._wrapped_transport
        if not hasattr(transport, "handle_request"):
            raise TypeError(
                f"The wrapped transport {type(transport).__name__} does not support sync "
                "requests; pass a sync transport (e.g. transport=httpx.HTTPTransport())"
            )
        attempt = 1
        while True:
            try:
                response = transport.handle_request(request)  # type: ignore[union-attr]
            except httpx.TransportError as exc:
                delay = self.decide(request, exc, attempt)
                if delay is None or not rewind_stream(request.stream):
                    raise
                self._log_retry(request, exc, attempt, delay)
            else:
                if self._wants_body(request, response, attempt):
                    raw = b"".join(response.iter_raw())  # also closes the response
                    response = _rebuild_response(request, response, raw)
                delay = self.decide(request, response, attempt)
                if delay is None or not rewind_stream(request.stream):
                    return response
                response.close()
                self._log_retry(request, response, attempt, delay)
            (self._sleep or _sleep)(delay)
            attempt += 1

    def close(self) -> None:
        """Close the wrapped transport."""
        close = getattr(self._wrapped_transport, "close", None)
        if close is not None:
            close()

    # ---- async shell ---------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the wrapped async transport, retrying per the policy."""
        transport = self._wrapped_transport
        if not hasattr(transport, "handle_async_request"):
            raise TypeError(
                f"The wrapped transport {type(transport).__name__} does not support async "
                "requests; pass an async transport (e.g. async_transport=httpx.AsyncHTTPTransport())"
            )
        attempt = 1
        while True:
            try:
                response = await transport.handle_async_request(request)  # type: ignore[union-attr]
            except httpx.TransportError as exc:
                delay = self.decide(request, exc, attempt)
                if delay is None or not rewind_stream(request.stream):
                    raise
                self._log_retry(request, exc, attempt, delay)
            else:
                if self._wants_body(request, response, attempt):
                    raw = b"".join([chunk async for chunk in response.aiter_raw()])
                    response = _rebuild_response(request, response, raw)
                delay = self.decide(request, response, attempt)
                if delay is None or not rewind_stream(request.stream):
                    return response
                await response.aclose()
                self._log_retry(request, response, attempt, delay)
            await (self._async_sleep or _async_sleep)(delay)
            attempt += 1

    async def aclose(self) -> None:
        """Close the wrapped transport (``aclose()`` if it has one, else ``close()``)."""
        aclose = getattr(self._wrapped_transport, "aclose", None)
        if aclose is not None:
            await aclose()
            return
        close = getattr(self._wrapped_transport, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._wrapped_transport!r}, max_attempts={self.max_attempts}, "
            f"max_backoff_wait={self.max_backoff_wait}, backoff_factor={self.backoff_factor}, "
            f"jitter_ratio={self.jitter_ratio})"
        )
