"""The one ASGI layer in front of the routes: errors, request log, faults, rate limits, bodies.

Every HTTP request passes through :class:`Front` once, so what all of them share is done in
one place and, on the common path (test controls off, no faults, no rate-limit emulation),
with as little work as possible: the request log entry is only built when the test controls
are on, fault lookups cost one emptiness check when there are none, the ``ratelimit-*``
headers are precomputed, and a request body is only counted when it has no
``Content-Length`` (a declared length over the limit is refused before the body is read).

Errors never cost the client its connection when they need not: Starlette's ``HTTPException``
(the router's 404 and 405) becomes its problem+json answer; any other error before the reply
started is logged under a request id and answered 500 problem+json (with ``x-request-id``);
an error after a complete reply is only logged; only an error in the middle of a reply is
passed on, because closing the connection (which uvicorn then does) is the only way left to
tell the client.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

from .controls import LOGGED_HEADERS, drop_connection, hang_connection
from .errors import http_problem, internal_error, log_unhandled, problem, throttled
from .gate import Abandon, counted, refuse_declared

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from .controls import Faults, RequestLog
    from .core import Core

__all__ = ["Front"]

# The ``ratelimit-*`` headers of a /v1 answer when the rate-limit emulation is off.
_RATE_CREATE = ((b"ratelimit-remaining", b"599"), (b"ratelimit-reset", b"1"))
_RATE_OTHER = ((b"ratelimit-remaining", b"2999"), (b"ratelimit-reset", b"1"))


class Front:
    """ASGI middleware in front of the router (see the module docstring).

    ``limit_for(method, path)`` gives ``(limit in bytes, detail of the 413 or None)`` of a
    request body; it is asked per request, so a changed setting applies to the next one.
    """

    def __init__(
        self,
        app: ASGIApp,
        core: Core,
        faults: Faults,
        requests: RequestLog,
        limit_for: Callable[[str, str], tuple[int, str | None]],
    ) -> None:
        self.app = app
        self.config = core.config
        self.faults = faults
        self.requests = requests
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        api = path.startswith("/v1/")
        extra: Any = None  # the ratelimit-* headers of a /v1 answer
        rate = None
        if api:
            is_create = method == "POST" and path.endswith("/predictions")
            limiter = self.faults.rate_limit
            rate = limiter.take(is_create) if limiter.enabled else None
            if rate is None:
                extra = _RATE_CREATE if is_create else _RATE_OTHER
            else:  # rate-limit emulation (test controls)
                extra = (
                    (b"ratelimit-remaining", str(rate[1]).encode()),
                    (b"ratelimit-reset", str(rate[2]).encode()),
                )
        # The request log exists for tests: kept only with the test controls on.
        entry = (
            _entry(scope, method, path)
            if self.config.test_controls and not path.startswith("/_local/")
            else None
        )
        t0 = time.monotonic() if entry is not None else 0.0
        requests = self.requests
        started = complete = False

        async def reply(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
                if entry is not None:
                    entry["status"] = message["status"]
                    requests.add(entry)  # logged before the client can see the reply
                if extra is not None:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
                await send(message)
                return
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True

        try:
            try:
                if rate is not None and not rate[0]:
                    await throttled(rate[2]).response()(scope, receive, reply)
                    return
                if (api or path.startswith("/delivery/")) and self.faults.active:
                    started = True  # a fault may use the connection itself: no 500 after it
                    if await self._faults(scope, receive, send, reply, entry):
                        return
                    started = False
                await self._guarded(scope, receive, reply)
            except Exception as exc:
                if started:
                    log_unhandled()
                    if complete:
                        return
                    raise
                await _error_response(exc)(scope, receive, reply)
        finally:
            if entry is not None:
                entry["duration"] = time.monotonic() - t0
                if entry["status"] is None:
                    requests.add(entry)  # no reply was sent (client went away)

    def _guarded(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The app run with the body limit of the request in force (to be awaited: a plain
        function, so that every request does not pay for one more coroutine)."""
        limit, detail = self.limit_for(scope["method"], scope["path"])
        length = _declared_length(scope)
        if length < 0:  # no (usable) Content-Length: count the body as it streams
            return self.app(scope, counted(receive, limit, detail), send)
        if length > limit:
            return refuse_declared(scope, receive, send, length, limit, detail)
        return self.app(scope, receive, send)  # it reads exactly ``length`` bytes: no count

    async def _faults(
        self, scope: Scope, receive: Receive, send: Send, reply: Send, entry: Any
    ) -> bool:
        """Apply the first matching injected fault; True when it answered the request."""
        method, path = scope["method"], scope["path"]
        fault = self.faults.take(method, path)
        if fault is not None:
            if entry is not None:
                entry["fault"] = fault.id
            if fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
            if fault.drop or fault.hang:
                if fault.hang:
                    hang = fault.hang_ms / 1000 if fault.hang_ms is not None else None
                    await hang_connection(receive, send, hang)
                else:
                    await drop_connection(send)
                return True
            if fault.status is not None:
                await _fault_response(fault)(scope, receive, reply)
                return True
            if fault.drop_response:
                await self._guarded(scope, receive, _swallow)
                await drop_connection(send)
                return True
        if path.startswith("/v1/streams/"):
            sse_fault = self.faults.take(method, path, sse=True)
            if sse_fault is not None:
                scope.setdefault("state", {})["sse_drop_after"] = sse_fault.sse_drop_after
        return False


def _declared_length(scope: Scope) -> int:
    """The request's ``Content-Length`` (its first), or -1 without a usable one."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return -1


def _entry(scope: Scope, method: str, path: str) -> dict[str, Any]:
    """A request log entry (status and duration are filled in as the request goes)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return {
        "method": method,
        "path": path,
        "query": scope.get("query_string", b"").decode("latin-1"),
        "headers": {h: headers[h] for h in LOGGED_HEADERS if h in headers},
        "time": time.time(),
        "status": None,
        "duration": None,
    }


def _error_response(exc: Exception) -> Response:
    """The answer to an error raised before any reply was sent."""
    if isinstance(exc, HTTPException):  # the router's 404 and 405
        return http_problem(exc)
    if isinstance(exc, Abandon):  # a body without a length went on past the drain limit
        response = exc.error.response()
        response.headers["Connection"] = "close"
        return response
    return internal_error(log_unhandled())


async def _swallow(message: Message) -> None:
    """An ASGI ``send`` that discards the answer (the ``drop_response`` fault)."""


def _fault_response(fault: Any) -> Response:
    status = fault.status
    headers = dict(fault.headers)
    if status == 429:
        retry = fault.retry_after if fault.retry_after is not None else 1
        err = throttled(retry)
        headers.setdefault("Retry-After", str(retry))
        body = fault.body or err.body()
        return problem(body, 429, headers)
    body = fault.body or {
        "detail": "Internal server error" if status == 500 else f"Injected fault: {status}",
        "status": status,
    }
    return problem(body, status, headers)
