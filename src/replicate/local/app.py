"""The Starlette application: the Replicate HTTP API under ``/v1`` plus local extras.

This module only assembles the parts: handlers live in mixins (``routes_predictions``,
``routes_models``, ``routes_files``, ``routes_local``) over ``routes_base`` (JSON
replies, pagination); ``routing`` is what they and the ``catalogue`` share. Nothing else
in ``replicate.local`` imports this module but the entry points that build the app
(``server``, ``cli``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .catalogue import install
from .controls import LOGGED_HEADERS, Faults, RequestLog, drop_connection, hang_connection
from .core import Core
from .errors import INTERNAL_ERROR, UnhandledErrors, problem, throttled
from .files import UPLOAD_TOO_LARGE
from .gate import MULTIPART_OVERHEAD, BodyLimit
from .routes_files import FileRoutes
from .routes_local import LocalRoutes, control_routes
from .routes_models import ModelRoutes
from .routes_predictions import PredictionRoutes
from .routing import CoreApi, Handler, wrap

__all__ = ["LocalApi", "LocalMiddleware", "build_app"]

# ---------------------------------------------------------------------------- middleware


class LocalMiddleware:
    """Request log, injected faults and the ``ratelimit-*`` headers."""

    def __init__(self, app: ASGIApp, core: Core, faults: Faults, requests: RequestLog) -> None:
        self.app = app
        self.core = core
        self.faults = faults
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"]
        # The request log exists for tests: kept only with the test controls on.
        log_requests = self.core.config.test_controls and not path.startswith("/_local/")
        started = time.monotonic()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": {h: headers[h] for h in LOGGED_HEADERS if h in headers},
            "time": time.time(),
            "status": None,
            "duration": None,
        }
        api = path.startswith("/v1/")
        is_create = method == "POST" and (
            path == "/v1/predictions" or path.endswith("/predictions")
        )

        rate = self.faults.rate_limit.take(is_create) if api else None

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                if log_requests:
                    self.requests.add(entry)  # logged before the client can see the reply
                if api:
                    hdrs = list(message.get("headers", []))
                    if rate is not None:  # rate-limit emulation (test controls)
                        hdrs.append((b"ratelimit-remaining", str(rate[1]).encode()))
                        hdrs.append((b"ratelimit-reset", str(rate[2]).encode()))
                    else:
                        hdrs.append((b"ratelimit-remaining", b"599" if is_create else b"2999"))
                        hdrs.append((b"ratelimit-reset", b"1"))
                    message = {**message, "headers": hdrs}
            await send(message)

        try:
            if rate is not None and not rate[0]:
                await throttled(rate[2]).response()(scope, receive, send_wrapper)
                return
            if api or path.startswith("/delivery/"):
                fault = self.faults.take(method, path)
                if fault is not None:
                    entry["fault"] = fault.id
                    if fault.delay_ms:
                        await asyncio.sleep(fault.delay_ms / 1000)
                    if fault.drop or fault.hang:
                        if fault.hang:
                            hang = fault.hang_ms / 1000 if fault.hang_ms is not None else None
                            await hang_connection(receive, send, hang)
                        else:
                            await drop_connection(send)
                        return
                    if fault.status is not None:
                        response = _fault_response(fault)
                        await response(scope, receive, send_wrapper)
                        return
                    if fault.drop_response:
                        await self.app(scope, receive, _swallow)
                        await drop_connection(send)
                        return
                if path.startswith("/v1/streams/"):
                    sse_fault = self.faults.take(method, path, sse=True)
                    if sse_fault is not None:
                        scope.setdefault("state", {})["sse_drop_after"] = sse_fault.sse_drop_after
            await self.app(scope, receive, send_wrapper)
        finally:
            entry["duration"] = time.monotonic() - started
            if entry["status"] is None and log_requests:
                self.requests.add(entry)  # no reply was sent (client went away)


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


# ---------------------------------------------------------------------------- the app


class LocalApi(PredictionRoutes, ModelRoutes, FileRoutes, LocalRoutes):
    """Route handlers bound to one ``Core``."""


class _App(Starlette):
    """Starlette with :class:`~.errors.UnhandledErrors` outside its error middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        return UnhandledErrors(super().build_middleware_stack())


def _body_limit(core: Core) -> Any:
    """``(limit, detail)`` of a request body for the input gate: uploads have their own."""

    def limit_for(method: str, path: str) -> tuple[int, str | None]:
        if method == "POST" and path == "/v1/files":
            return core.files.max_upload_size + MULTIPART_OVERHEAD, UPLOAD_TOO_LARGE
        return core.config.max_body_size, None

    return limit_for


def build_app(core: Core, *, lifespan: Any = None) -> Starlette:
    """The ASGI application for a ``Core``."""
    api = LocalApi(core)

    def r(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, wrap(handler), methods=methods)

    routes = [
        *control_routes(api, r),
        r("/v1/account", api.account_get, ["GET"]),
        r("/v1/hardware", api.hardware_list, ["GET"]),
        r("/v1/webhooks/default/secret", api.webhook_secret, ["GET"]),
        r("/v1/predictions", api.predictions_list, ["GET"]),
        r("/v1/predictions", api.predictions_create, ["POST"]),
        r("/v1/predictions/{id}", api.predictions_get, ["GET"]),
        r("/v1/predictions/{id}/cancel", api.predictions_cancel, ["POST"]),
        r("/v1/models", api.models_list, ["GET"]),
        r("/v1/models", api.models_create, ["POST"]),
        r("/v1/models", api.models_search, ["QUERY"]),
        r("/v1/models/{owner}/{name}", api.models_get, ["GET"]),
        r("/v1/models/{owner}/{name}", api.models_update, ["PATCH"]),
        r("/v1/models/{owner}/{name}", api.models_delete, ["DELETE"]),
        r("/v1/models/{owner}/{name}/examples", api.models_examples, ["GET"]),
        r("/v1/models/{owner}/{name}/predictions", api.models_predictions_create, ["POST"]),
        r("/v1/models/{owner}/{name}/readme", api.models_readme, ["GET"]),
        r("/v1/models/{owner}/{name}/versions", api.versions_list, ["GET"]),
        r("/v1/models/{owner}/{name}/versions/{version_id}", api.versions_get, ["GET"]),
        r("/v1/models/{owner}/{name}/versions/{version_id}", api.versions_delete, ["DELETE"]),
        r("/v1/files", api.files_list, ["GET"]),
        r("/v1/files", api.files_create, ["POST"]),
        r("/v1/files/{file_id}", api.files_get, ["GET"]),
        r("/v1/files/{file_id}", api.files_delete, ["DELETE"]),
        r("/v1/files/{file_id}/download", api.files_download, ["GET"]),
        r("/v1/streams/{token}", api.stream, ["GET"]),
        r("/delivery/{token}/{filename}", api.delivery, ["GET"]),
        r("/", api.web_index, ["GET"]),
        r("/web/p/{id}", api.web_prediction, ["GET"]),
        r("/web/{owner}/{name}", api.web_model, ["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            return problem(
                {"detail": "The requested resource could not be found.", "status": 404},
                404,
                headers,
            )
        if exc.status_code == 405:
            return problem({"detail": "Method not allowed", "status": 405}, 405, headers)
        return problem(
            {"detail": str(exc.detail), "status": exc.status_code}, exc.status_code, headers
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        import logging

        rid = secrets.token_hex(8)
        logging.getLogger("replicate.local").exception("unhandled error (request %s)", rid)
        return problem(dict(INTERNAL_ERROR), 500, {"x-request-id": rid})

    app = _App(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    # Deployments, trainings, collections and search.
    install(app, core)
    core_api: CoreApi = api  # what the catalogue may ask of the core routes
    app.state.core = core
    app.state.api = core_api
    app.add_middleware(BodyLimit, limit_for=_body_limit(core))
    app.add_middleware(LocalMiddleware, core=core, faults=api.faults, requests=api.requests)
    return app
