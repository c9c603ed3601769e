"""Account, hardware, webhook secret, web pages and the /_local test controls."""

from __future__ import annotations

import urllib.parse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    Response,
)

from .core import HARDWARE
from .errors import ApiError, not_found
from .routes_base import (
    BaseRoutes,
    json_response,
)
from .util import iso, parse_duration


class LocalRoutes(BaseRoutes):
    """Account, hardware, webhook secret, web pages and the /_local test controls."""

    # ------------------------------------------------------------------ misc endpoints
    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def account_get(self, request: Request) -> Response:
        self.account(request)
        cfg = self.core.config
        return json_response({"type": "user", "username": cfg.username, "name": cfg.account_name})

    async def hardware_list(self, request: Request) -> Response:
        self.account(request)
        return json_response(HARDWARE)

    async def webhook_secret(self, request: Request) -> Response:
        self.account(request)
        return json_response({"key": self.core.webhooks.secret})

    # ------------------------------------------------------------------ web pages
    async def web_prediction(self, request: Request) -> Response:
        from .web import prediction_page

        return prediction_page(self.core, request, self.origin(request))

    async def web_model(self, request: Request) -> Response:
        from .web import model_page

        return model_page(self.core, request, self.origin(request))

    # ------------------------------------------------------------------ test controls
    def _controls(self) -> None:
        if not self.core.config.test_controls:
            raise not_found()

    async def ctl_faults(self, request: Request) -> Response:
        self._controls()
        if request.method == "POST":
            body = await self.json_body(request)
            try:
                fault = self.faults.add(**body)
            except (TypeError, ValueError) as exc:
                raise ApiError(422, str(exc)) from exc
            return json_response(fault.to_json(), 201)
        if request.method == "DELETE":
            self.faults.clear()
            return Response(status_code=204)
        return json_response([f.to_json() for f in self.faults.list()])

    async def ctl_clock(self, request: Request) -> Response:
        self._controls()
        if request.method == "POST":
            body = await self.json_body(request)
            adv = body.get("advance") if isinstance(body, dict) else None
            try:
                seconds = parse_duration(str(adv)) if adv is not None else 0.0
            except ValueError as exc:
                raise ApiError(422, str(exc)) from exc
            await run_in_threadpool(self.core.advance_clock, seconds)
        return json_response({"now": iso(self.core.clock.now()), "offset": self.core.clock.offset})

    async def ctl_requests(self, request: Request) -> Response:
        self._controls()
        if request.method == "DELETE":
            self.requests.clear()
            return Response(status_code=204)
        return json_response(self.requests.list())

    async def ctl_deliveries(self, request: Request) -> Response:
        self._controls()
        return json_response(self.core.webhooks.attempts())

    async def ctl_reset(self, request: Request) -> Response:
        self._controls()
        body = await self.json_body(request) if await request.body() else {}
        secrets_too = bool(body.get("secrets")) if isinstance(body, dict) else False
        await run_in_threadpool(self.core.reset, secrets=secrets_too)
        self.faults.clear()
        self.requests.clear()
        return Response(status_code=204)

    async def ctl_signed_url(self, request: Request) -> Response:
        self._controls()
        fid = request.path_params["file_id"]
        ttl = float(request.query_params.get("ttl", "3600"))
        params = self.core.files.sign_download(self.core.config.username, fid, ttl)
        return json_response(
            {
                "url": f"{self.origin(request)}/v1/files/{fid}/download?{urllib.parse.urlencode(params)}"
            }
        )
