"""Account, hardware, webhook secret, web pages and the /_local test controls."""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    Response,
)

from .controls import Fault, Outcome
from .core import HARDWARE, Core
from .errors import ApiError, not_found
from .gate import DAY, MAX_CLOCK_OFFSET, MAX_PERIOD, duration, number
from .routes_base import (
    BaseRoutes,
    json_response,
)
from .runner import NotActive
from .util import iso

#: Settings ``/_local/limits`` can change, and where each lives.
LIMIT_FIELDS = (
    "page_sizes",
    "max_upload_size",
    "max_body_size",
    "max_queue_depth",
    "retention",
    "file_expiry",
    "webhook_backoff_scale",
    "webhook_timeout",
    "rate_limits",
)

#: Bounds of the numbers ``/_local/limits`` takes (beyond them: 422).
MAX_PAGE_SIZE = 1000
MAX_SIZE = 1 << 40
MAX_QUEUE_DEPTH = 1_000_000
MAX_BACKOFF_SCALE = 1000.0
MAX_WEBHOOK_TIMEOUT = DAY

_LIFECYCLE_ACTIONS = ("hold", "release", "emit", "complete", "fail", "abort")


class LocalRoutes(BaseRoutes):
    """Account, hardware, webhook secret, web pages and the /_local test controls.

    The control operations are plain methods too (``fault_add``, ``lifecycle``, ``script``,
    ``set_limits``, ``reset_controls``), shared with the ``LocalServer`` handle.
    """

    def __init__(self, core: Core) -> None:
        super().__init__(core)
        self.faults.now = core.clock.now
        core.webhooks.fault_hook = self._webhook_fault
        self._limit_defaults = self.limits()

    def _webhook_fault(self, url: str) -> Fault | None:
        # Faults only exist when added through the controls or the Python handle.
        return self.faults.take("POST", url, kind="webhook")

    # ------------------------------------------------------------------ control operations
    def fault_add(self, **kwargs: Any) -> Fault:
        """Add a fault (see ``controls.Fault``); ValueError/TypeError name the bad field."""
        return self.faults.add(**kwargs)

    def lifecycle(self, pid: str, action: str, body: dict[str, Any] | None = None) -> None:
        """Apply ``hold``/``release``/``emit``/``complete``/``fail``/``abort`` to a prediction.

        Raises KeyError (unknown prediction), NotActive (already finished) or ValueError
        (wrong state or body).
        """
        body = body or {}
        if self.core.store.get_prediction(pid) is None:
            raise KeyError(pid)
        runner = self.core.runner
        if action == "hold":
            runner.hold(pid)
        elif action == "release":
            runner.release(pid)
        elif action == "emit":
            logs = body.get("logs", [])
            if "log" in body:
                logs = [body["log"]]
            if isinstance(logs, str):
                logs = logs.splitlines()
            if not isinstance(logs, list) or not all(isinstance(x, str) for x in logs):
                raise ValueError("emit: log must be a string (logs: a list of strings)")
            if "output" not in body and not logs:
                raise ValueError("emit needs an output chunk (output) or a log line (log)")
            for line in logs:
                runner.emit(pid, log=line)
            if "output" in body:
                runner.emit(pid, output=body["output"])
        elif action == "complete":
            runner.complete(pid, output=body.get("output", ...))
        elif action == "fail":
            error = body.get("error", "Prediction failed")
            if not isinstance(error, str):
                raise ValueError("fail: error must be a string")
            runner.fail(pid, error)
        elif action == "abort":
            runner.abort(pid)
        else:
            raise ValueError(
                f"unknown lifecycle action {action!r} (one of {', '.join(_LIFECYCLE_ACTIONS)})"
            )

    def script(self, model: str, outcomes: list[Any]) -> int:
        """Queue scripted outcomes for the next predictions of ``owner/name``; returns the queue length."""
        owner, _, name = model.partition("/")
        if not name or self.core.registry.get_model(owner, name) is None:
            raise KeyError(model)
        parsed = [Outcome.parse(o) for o in outcomes]
        return self.core.runner.scripts.add(model, parsed)

    def limits(self) -> dict[str, Any]:
        """The current test-adjustable limits."""
        core = self.core
        return {
            "page_sizes": dict(core.config.page_sizes),
            "max_upload_size": core.files.max_upload_size,
            "max_body_size": core.config.max_body_size,
            "max_queue_depth": core.runner.max_queue_depth,
            "retention": core.config.retention,
            "file_expiry": core.files.expiry,
            "webhook_backoff_scale": core.webhooks.backoff_scale,
            "webhook_timeout": core.webhooks.timeout,
            "rate_limits": self.faults.rate_limit.settings(),
        }

    def set_limits(self, **values: Any) -> dict[str, Any]:
        """Change limits (see ``LIMIT_FIELDS``); returns them all. ValueError names a bad field."""
        core = self.core
        unknown = set(values) - set(LIMIT_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown limit(s) {', '.join(sorted(unknown))} (known: {', '.join(LIMIT_FIELDS)})"
            )
        if "page_sizes" in values:
            sizes = values["page_sizes"]
            if not isinstance(sizes, dict) or not all(
                k in core.config.page_sizes
                and isinstance(v, int)
                and not isinstance(v, bool)
                and 1 <= v <= MAX_PAGE_SIZE
                for k, v in sizes.items()
            ):
                raise ValueError(
                    f"page_sizes must map {', '.join(core.config.page_sizes)} to integers"
                    f" from 1 to {MAX_PAGE_SIZE}"
                )
        for key, low, top in (
            ("max_upload_size", 0, MAX_SIZE),
            ("max_body_size", 1024, MAX_SIZE),  # room for the control requests themselves
            ("max_queue_depth", 0, MAX_QUEUE_DEPTH),
        ):
            v = values.get(key)
            if key in values and (
                not isinstance(v, int) or isinstance(v, bool) or not low <= v <= top
            ):
                raise ValueError(f"{key} must be an integer from {low} to {top}, got {v!r}")
        parsed: dict[str, float | None] = {}
        for key, longest in (
            ("retention", MAX_PERIOD),
            ("file_expiry", MAX_PERIOD),
            ("webhook_backoff_scale", MAX_BACKOFF_SCALE),
            ("webhook_timeout", MAX_WEBHOOK_TIMEOUT),
        ):
            if key not in values:
                continue
            v = values[key]
            if v is None or v == "never":
                if key != "retention":
                    raise ValueError(f"{key} must be a number of seconds or a duration")
                parsed[key] = None
                continue
            parsed[key] = duration(v, key, maximum=longest)
        if "rate_limits" in values:  # validates before changing anything
            self.faults.rate_limit.configure(values["rate_limits"])
        if "page_sizes" in values:
            core.config.page_sizes.update(values["page_sizes"])
        if "max_upload_size" in values:
            core.files.max_upload_size = values["max_upload_size"]
            core.config.max_upload_size = values["max_upload_size"]
        if "max_body_size" in values:
            core.config.max_body_size = values["max_body_size"]
        if "max_queue_depth" in values:
            core.runner.max_queue_depth = values["max_queue_depth"]
            core.config.max_queue_depth = values["max_queue_depth"]
        if "retention" in parsed:
            core.config.retention = parsed["retention"]
        if "file_expiry" in parsed:
            core.files.expiry = float(parsed["file_expiry"] or 0.0)
        if "webhook_backoff_scale" in parsed:
            core.webhooks.backoff_scale = float(parsed["webhook_backoff_scale"] or 0.0)
            core.webhooks.kick()
        if "webhook_timeout" in parsed:
            core.webhooks.timeout = float(parsed["webhook_timeout"] or 0.0)
        return self.limits()

    def reset_controls(self) -> None:
        """Clear faults, scripted outcomes and the request log; restore the limits."""
        self.faults.clear()
        self.core.runner.scripts.clear()
        self.requests.clear()
        self.set_limits(**self._limit_defaults)

    # ------------------------------------------------------------------ misc endpoints
    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def account_get(self, request: Request) -> Response:
        username = self.account(request)
        cfg = self.core.config
        name = cfg.account_name if username == cfg.username else username
        return json_response({"type": "user", "username": username, "name": name})

    async def hardware_list(self, request: Request) -> Response:
        self.account(request)
        return json_response(HARDWARE)

    async def webhook_secret(self, request: Request) -> Response:
        self.account(request)
        return json_response({"key": self.core.webhooks.secret})

    # ------------------------------------------------------------------ web pages
    async def web_index(self, request: Request) -> Response:
        from .web import index_page

        return index_page(self.core, request, self.origin(request))

    async def web_prediction(self, request: Request) -> Response:
        from .web import prediction_page

        return prediction_page(self.core, request, self.origin(request))

    async def web_model(self, request: Request) -> Response:
        from .web import model_page

        return model_page(self.core, request, self.origin(request))

    # ------------------------------------------------------------------ test controls
    def _controls(self, request: Request) -> None:
        """Test controls exist only with ``test_controls``; with ``--token`` values set they
        need one of them, like the API (in any-token mode they stay open, loopback only)."""
        if not self.core.config.test_controls:
            raise not_found()
        if self.core.config.tokens is not None:
            self.account(request)

    async def ctl_faults(self, request: Request) -> Response:
        self._controls(request)
        if request.method == "POST":
            body = await self.json_body(request)
            if not isinstance(body, dict):
                raise ApiError(422, "a fault is a JSON object")
            try:
                fault = self.fault_add(**body)
            except (TypeError, ValueError) as exc:
                raise ApiError(422, str(exc)) from exc
            return json_response(fault.to_json(), 201)
        if request.method == "DELETE":
            self.faults.clear()
            return Response(status_code=204)
        return json_response([f.to_json() for f in self.faults.list()])

    async def ctl_fault(self, request: Request) -> Response:
        """``DELETE /_local/faults/{fault_id}``: remove one fault."""
        self._controls(request)
        try:
            fid = int(request.path_params["fault_id"])
        except ValueError as exc:
            raise not_found() from exc
        if not self.faults.remove(fid):
            raise not_found()
        return Response(status_code=204)

    async def ctl_prediction(self, request: Request) -> Response:
        """``POST /_local/predictions/{id}/{action}``: lifecycle controls; replies with the object."""
        self._controls(request)
        pid = request.path_params["id"]
        action = request.path_params["action"]
        if action not in _LIFECYCLE_ACTIONS:
            raise not_found()
        body = await self.json_body(request, empty={})
        if not isinstance(body, dict):
            raise ApiError(422, f"the body of {action} is a JSON object")
        try:
            await run_in_threadpool(self.lifecycle, pid, action, body)
        except KeyError as exc:
            raise not_found() from exc
        except NotActive as exc:
            raise ApiError(409, f"prediction {pid} has already finished") from exc
        except ValueError as exc:
            raise ApiError(409, str(exc)) from exc
        row = self.core.store.get_prediction(pid)
        assert row is not None
        return json_response(self.core.prediction_json(row, self.origin(request)))

    async def ctl_script(self, request: Request) -> Response:
        """``/_local/models/{owner}/{name}/script``: POST queues outcomes, GET lists, DELETE clears."""
        self._controls(request)
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        scripts = self.core.runner.scripts
        if request.method == "DELETE":
            scripts.clear(model)
            return Response(status_code=204)
        if request.method == "POST":
            body = await self.json_body(request)
            outcomes = (
                body.get("outcomes") if isinstance(body, dict) and "outcomes" in body else body
            )
            if isinstance(outcomes, dict):
                outcomes = [outcomes]
            if not isinstance(outcomes, list) or not outcomes:
                raise ApiError(422, "outcomes must be a non-empty list of outcome objects")
            try:
                self.script(model, outcomes)
            except KeyError as exc:
                raise not_found() from exc
            except ValueError as exc:
                raise ApiError(422, str(exc)) from exc
            return json_response(
                {"model": model, "pending": scripts.pending(model).get(model, [])}, 201
            )
        return json_response({"model": model, "pending": scripts.pending(model).get(model, [])})

    async def ctl_limits(self, request: Request) -> Response:
        """``/_local/limits``: GET the limits, POST changes some of them."""
        self._controls(request)
        if request.method == "POST":
            body = await self.json_body(request)
            if not isinstance(body, dict):
                raise ApiError(422, "limits are a JSON object")
            try:
                return json_response(self.set_limits(**body))
            except ValueError as exc:
                raise ApiError(422, str(exc)) from exc
        return json_response(self.limits())

    async def ctl_clock(self, request: Request) -> Response:
        self._controls(request)
        if request.method == "POST":
            body = await self.json_body(request)
            adv = body.get("advance") if isinstance(body, dict) else None
            try:
                seconds = (
                    duration(adv, "advance", maximum=MAX_CLOCK_OFFSET) if adv is not None else 0.0
                )
                await run_in_threadpool(self.core.advance_clock, seconds)
            except ValueError as exc:
                raise ApiError(422, str(exc)) from exc
        return json_response({"now": iso(self.core.clock.now()), "offset": self.core.clock.offset})

    async def ctl_requests(self, request: Request) -> Response:
        self._controls(request)
        if request.method == "DELETE":
            self.requests.clear()
            return Response(status_code=204)
        return json_response(self.requests.list())

    async def ctl_deliveries(self, request: Request) -> Response:
        """Every webhook delivery attempt (``?prediction_id=`` filters)."""
        self._controls(request)
        pid = request.query_params.get("prediction_id")
        return json_response(await run_in_threadpool(self.core.webhooks.attempts, pid))

    async def ctl_reset(self, request: Request) -> Response:
        self._controls(request)
        body = await self.json_body(request, empty={})
        secrets_too = bool(body.get("secrets")) if isinstance(body, dict) else False
        self.faults.clear()  # first, so nothing injected hits the reset itself
        await run_in_threadpool(self.core.reset, secrets=secrets_too)
        self.reset_controls()
        return Response(status_code=204)

    async def ctl_signed_url(self, request: Request) -> Response:
        self._controls(request)
        fid = request.path_params["file_id"]
        try:
            ttl = number(
                request.query_params.get("ttl", "3600"), "ttl", minimum=0, maximum=MAX_PERIOD
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        params = self.core.files.sign_download(self.core.config.username, fid, ttl)
        return json_response(
            {
                "url": f"{self.origin(request)}/v1/files/{fid}/download?{urllib.parse.urlencode(params)}"
            }
        )


def control_routes(api: LocalRoutes, route: Any) -> list[Any]:
    """The ``/_local/*`` routes; ``route(path, handler, methods)`` builds one."""
    return [
        route("/_local/health", api.health, ["GET"]),
        route("/_local/faults", api.ctl_faults, ["GET", "POST", "DELETE"]),
        route("/_local/faults/{fault_id}", api.ctl_fault, ["DELETE"]),
        route("/_local/clock", api.ctl_clock, ["GET", "POST"]),
        route("/_local/limits", api.ctl_limits, ["GET", "POST"]),
        route("/_local/requests", api.ctl_requests, ["GET", "DELETE"]),
        route("/_local/webhooks/deliveries", api.ctl_deliveries, ["GET"]),
        route("/_local/files/{file_id}/signed-url", api.ctl_signed_url, ["GET"]),
        route("/_local/predictions/{id}/{action}", api.ctl_prediction, ["POST"]),
        route("/_local/models/{owner}/{name}/script", api.ctl_script, ["GET", "POST", "DELETE"]),
        route("/_local/reset", api.ctl_reset, ["POST"]),
    ]
