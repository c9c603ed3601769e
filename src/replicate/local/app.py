"""The Starlette application: the Replicate HTTP API under ``/v1`` plus local extras."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import authenticate
from .controls import LOGGED_HEADERS, Faults, RequestLog
from .core import HARDWARE, Core
from .errors import ApiError, input_validation, invalid_version, not_found, problem, throttled
from .files import FileTooLarge
from .runner import TERMINAL, QueueFull
from .schema import validate_input
from .sse import event_stream, parse_last_event_id
from .util import iso, parse_duration, parse_iso

Handler = Callable[[Request], Awaitable[Response]]

_PREFER_WAIT = re.compile(r"^wait(=([1-9]|[1-5][0-9]|60))?$")
_WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
_JSON_UTF8 = "application/json; charset=UTF-8"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _is_http_url(value: str) -> bool:
    parts = urllib.parse.urlsplit(value)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and value.isprintable()
        and " " not in value
    )


def json_response(
    value: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    """Compact JSON response."""
    return Response(_dumps(value), status_code=status, headers=headers, media_type=media_type)


def _json_type(v: Any) -> str:
    from .schema import _json_type as jt

    return jt(v)


# ---------------------------------------------------------------------------- pagination


def _encode_cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(urllib.parse.urlencode(data).encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> dict[str, str]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        data = dict(urllib.parse.parse_qsl(raw, strict_parsing=True))
    except Exception as exc:
        raise ApiError(400, "Invalid cursor") from exc
    return data


def _page_url(request: Request, origin: str, cursor: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", cursor))
    return f"{origin}{request.url.path}?{urllib.parse.urlencode(params)}"


def keyset_page(
    request: Request, origin: str, rows: list[dict[str, Any]], page_size: int
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """Page rows sorted newest first by ``(created_at, id)``; returns (page, next, previous)."""
    key = lambda r: (r["created_at"], r["id"])  # noqa: E731
    cursor = request.query_params.get("cursor")
    if cursor:
        c = _decode_cursor(cursor)
        try:
            anchor = (float(c["p"]), c["i"])
            direction = c.get("d", "n")
        except (KeyError, ValueError) as exc:
            raise ApiError(400, "Invalid cursor") from exc
        if direction == "p":
            newer = [r for r in rows if key(r) > anchor]
            page = newer[-page_size:]
            has_before = len(newer) > page_size
            has_after = True
        else:
            older = [r for r in rows if key(r) < anchor]
            page = older[:page_size]
            has_before = True
            has_after = len(older) > page_size
    else:
        page = rows[:page_size]
        has_before = False
        has_after = len(rows) > page_size
    nxt = prev = None
    if page and has_after:
        nxt = _page_url(
            request,
            origin,
            _encode_cursor({"p": repr(page[-1]["created_at"]), "i": page[-1]["id"], "d": "n"}),
        )
    if page and has_before:
        prev = _page_url(
            request,
            origin,
            _encode_cursor({"p": repr(page[0]["created_at"]), "i": page[0]["id"], "d": "p"}),
        )
    return page, nxt, prev


def offset_page(
    request: Request, origin: str, rows: list[Any], page_size: int
) -> tuple[list[Any], str | None, str | None]:
    """Offset pagination (for small sorted lists such as models)."""
    cursor = request.query_params.get("cursor")
    offset = 0
    if cursor:
        try:
            offset = max(0, int(_decode_cursor(cursor)["o"]))
        except (KeyError, ValueError) as exc:
            raise ApiError(400, "Invalid cursor") from exc
    page = rows[offset : offset + page_size]
    nxt = (
        _page_url(request, origin, _encode_cursor({"o": offset + page_size}))
        if offset + page_size < len(rows)
        else None
    )
    prev = (
        _page_url(request, origin, _encode_cursor({"o": max(0, offset - page_size)}))
        if offset > 0
        else None
    )
    return page, nxt, prev


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

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                if not path.startswith("/_local/"):
                    self.requests.add(entry)  # logged before the client can see the reply
                if api:
                    hdrs = list(message.get("headers", []))
                    hdrs.append((b"ratelimit-remaining", b"599" if is_create else b"2999"))
                    hdrs.append((b"ratelimit-reset", b"1"))
                    message = {**message, "headers": hdrs}
            await send(message)

        try:
            if api or path.startswith("/delivery/"):
                fault = self.faults.take(method, path)
                if fault is not None:
                    if fault.delay_ms:
                        await asyncio.sleep(fault.delay_ms / 1000)
                    if fault.status is not None:
                        response = _fault_response(fault)
                        await response(scope, receive, send_wrapper)
                        return
                if path.startswith("/v1/streams/"):
                    sse_fault = self.faults.take(method, path, sse=True)
                    if sse_fault is not None:
                        scope.setdefault("state", {})["sse_drop_after"] = sse_fault.sse_drop_after
            await self.app(scope, receive, send_wrapper)
        finally:
            entry["duration"] = time.monotonic() - started
            if entry["status"] is None and not path.startswith("/_local/"):
                self.requests.add(entry)  # no reply was sent (client went away)


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


class LocalApi:
    """Route handlers bound to one ``Core``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.faults = Faults()
        self.requests = RequestLog()

    # ------------------------------------------------------------------ helpers
    def origin(self, request: Request) -> str:
        """The origin used in URLs: the public URL, else the request's own."""
        if self.core.config.public_url:
            return self.core.config.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    def account(self, request: Request) -> str:
        """Authenticate; returns the username."""
        cfg = self.core.config
        return authenticate(request, cfg.tokens, cfg.username)

    async def json_body(self, request: Request) -> Any:
        """Parsed JSON body; 400 when it is not JSON."""
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise ApiError(400, "Request body is not valid JSON") from exc

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

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

    # ------------------------------------------------------------------ predictions
    def _validate_create(self, body: Any, *, with_version: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise input_validation(
                [f"- (root): Invalid type. Expected: object, given: {_json_type(body)}"]
            )
        allowed = {"input", "stream", "webhook", "webhook_completed", "webhook_events_filter"} | (
            {"version"} if with_version else set()
        )
        lines: list[str] = []
        if with_version and "version" not in body:
            lines.append("- version is required")
        if "input" not in body:
            lines.append("- input is required")
        elif not isinstance(body["input"], dict):
            lines.append(
                f"- input: Invalid type. Expected: object, given: {_json_type(body['input'])}"
            )
        for k in body:
            if k not in allowed:
                lines.append(f"- Additional property {k} is not allowed")
        if with_version and "version" in body and not isinstance(body["version"], str):
            lines.append(
                f"- version: Invalid type. Expected: string, given: {_json_type(body['version'])}"
            )
        if lines:
            raise input_validation(lines)
        return body

    async def _create(
        self, request: Request, account: str, body: dict[str, Any], version: dict[str, Any]
    ) -> Response:
        core = self.core
        if core.registry.impl(version["id"]) is None:
            raise ApiError(
                422, "This version's source is no longer available", title=INVALID_VERSION_TITLE
            )
        # Prefer
        prefer_raw = request.headers.get("prefer")
        wait: float | None = None
        applied: str | None = None
        if prefer_raw is not None:
            for pref in (p.strip() for p in prefer_raw.split(",")):
                if not pref.lower().startswith("wait"):
                    continue
                m = _PREFER_WAIT.match(pref)
                if not m:
                    raise ApiError(
                        422,
                        f"Invalid Prefer header {pref!r}: use 'wait' or 'wait=N' with N from 1 to 60",
                        title="Invalid Prefer header",
                    )
                wait = float(m.group(2)) if m.group(2) else 60.0
                applied = pref
        # Cancel-After
        deadline: float | None = None
        cancel_after = request.headers.get("cancel-after")
        if cancel_after is not None:
            try:
                deadline = parse_duration(cancel_after)
            except ValueError:
                deadline = None
            if deadline is None or deadline < 5:
                raise ApiError(
                    422,
                    f"Invalid Cancel-After header {cancel_after!r}: use a duration such as 30s, 5m or 1h (minimum 5s)",
                    title="Invalid Cancel-After header",
                )
        # webhook
        webhook = body.get("webhook")
        events_filter = body.get("webhook_events_filter")
        if webhook is None and body.get("webhook_completed") is not None:
            webhook = body["webhook_completed"]  # legacy field: completed events only
            events_filter = ["completed"]
        lines: list[str] = []
        if webhook is not None:
            parts = urllib.parse.urlsplit(webhook) if isinstance(webhook, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                lines.append("- webhook: must be an absolute http(s) URL")
        if events_filter is not None:
            if not isinstance(events_filter, list):
                lines.append(
                    f"- webhook_events_filter: Invalid type. Expected: array, given: {_json_type(events_filter)}"
                )
            else:
                for i, ev in enumerate(events_filter):
                    if ev not in _WEBHOOK_EVENTS:
                        choices = ", ".join(f'"{e}"' for e in _WEBHOOK_EVENTS)
                        lines.append(
                            f"- webhook_events_filter.{i}: webhook_events_filter.{i} must be one of the following: {choices}"
                        )
        if lines:
            raise input_validation(lines)
        # input
        issues = validate_input(version["openapi_schema"], body["input"])
        if issues:
            raise input_validation([f"- {i['field']}: {i['description']}" for i in issues], issues)
        if core.runner.queue_depth(version["id"]) >= core.runner.max_queue_depth:
            raise throttled(1)
        try:
            row = core.create_prediction(
                account=account,
                version=version,
                input=body["input"],
                origin=self.origin(request),
                webhook=webhook,
                webhook_events_filter=events_filter,
                deadline_seconds=deadline,
                stream=body["stream"] if isinstance(body.get("stream"), bool) else None,
            )
        except QueueFull as exc:
            raise throttled(1) from exc
        headers: dict[str, str] = {}
        status = 201
        if wait is not None:
            headers["Preference-Applied"] = applied or "wait"
            row = await self._wait_for(row["id"], wait)
            if row["status"] not in TERMINAL:
                status = 202
        origin = self.origin(request)
        inline = wait is not None and status == 201 and core.config.sync_file_outputs == "data-uri"
        out = core.prediction_json(row, origin, inline_files=inline)
        if status == 202:
            headers["Location"] = out["urls"]["get"]
        return json_response(out, status, headers)

    async def _wait_for(self, pid: str, seconds: float) -> dict[str, Any]:
        core = self.core
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            ev = core.hub.register(pid)
            try:
                row = core.store.get_prediction(pid)
                assert row is not None
                remaining = deadline - loop.time()
                if row["status"] in TERMINAL or remaining <= 0:
                    return row
                try:
                    await asyncio.wait_for(ev.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            finally:
                core.hub.unregister(pid, ev)

    async def predictions_create(self, request: Request) -> Response:
        account = self.account(request)
        body = self._validate_create(await self.json_body(request), with_version=True)
        version = self.core.registry.resolve(body["version"])
        if version is None:
            raise invalid_version()
        model = self.core.registry.get_model(version["owner"], version["name"])
        if (
            ":" not in body["version"]
            and "/" in body["version"]
            and model is not None
            and not model["is_official"]
        ):
            raise invalid_version()
        return await self._create(request, account, body, version)

    async def models_predictions_create(self, request: Request) -> Response:
        account = self.account(request)
        owner, name = request.path_params["owner"], request.path_params["name"]
        body = self._validate_create(await self.json_body(request), with_version=False)
        model = self.core.registry.get_model(owner, name)
        if model is None or not self._visible(model, account):
            raise not_found()
        version = self.core.registry.latest_version(owner, name)
        if version is None:
            raise invalid_version()
        return await self._create(request, account, body, version)

    async def predictions_get(self, request: Request) -> Response:
        account = self.account(request)
        row = self.core.get_prediction(account, request.path_params["id"])
        if row is None or row["kind"] != "prediction":
            raise not_found()
        return json_response(self.core.prediction_json(row, self.origin(request)))

    async def predictions_cancel(self, request: Request) -> Response:
        account = self.account(request)
        pid = request.path_params["id"]
        row = self.core.get_prediction(account, pid)
        if row is None:
            raise not_found()
        if row["status"] not in TERMINAL:
            self.core.cancel_prediction(pid)
            row = await self._wait_for(pid, 1.0)
        return json_response(self.core.prediction_json(row, self.origin(request)))

    async def predictions_list(self, request: Request) -> Response:
        account = self.account(request)
        origin = self.origin(request)
        qp = request.query_params
        if qp.get("source") == "web":
            return json_response({"next": None, "previous": None, "results": []})
        where = "account = ? AND kind = 'prediction' AND is_example = 0"
        params: list[Any] = [account]
        for name, op in (("created_after", ">="), ("created_before", "<")):
            if qp.get(name):
                try:
                    ts = parse_iso(qp[name])
                except ValueError as exc:
                    raise ApiError(400, f"Invalid {name}: expected an ISO 8601 date-time") from exc
                where += f" AND ROUND(created_at * 1000000) {op} ?"
                params.append(round(ts * 1_000_000))
        rows = self.core.store.query(
            f"SELECT * FROM predictions WHERE {where} ORDER BY created_at DESC, id DESC", params
        )
        page, nxt, prev = keyset_page(
            request, origin, rows, self.core.config.page_sizes["predictions"]
        )
        results = [
            self.core.prediction_json(self.core.store.decode_prediction(r) or r, origin)
            for r in page
        ]
        return json_response({"next": nxt, "previous": prev, "results": results})

    # ------------------------------------------------------------------ models
    def _visible(self, model: dict[str, Any], account: str) -> bool:
        return model["visibility"] == "public" or model["owner"] == account

    def version_json(self, v: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": v["id"],
            "created_at": iso(v["created_at"]),
            "cog_version": v["cog_version"],
            "openapi_schema": v["openapi_schema"],
        }

    def model_json(self, m: dict[str, Any], origin: str) -> dict[str, Any]:
        core = self.core
        owner, name = m["owner"], m["name"]
        latest = core.registry.latest_version(owner, name)
        ref = f"{owner}/{name}"
        count = core.store.one(
            "SELECT COUNT(*) AS n FROM predictions WHERE model = ? AND is_example = 0", (ref,)
        )
        ex_row = core.store.query_predictions(
            "model = ? AND is_example = 1", (ref,), "created_at DESC", 1
        )
        example = core.prediction_json(ex_row[0], origin) if ex_row else None
        return {
            "url": f"{origin}/web/{owner}/{name}",
            "owner": owner,
            "name": name,
            "description": m["description"],
            "visibility": m["visibility"],
            "github_url": m["github_url"],
            "paper_url": m["paper_url"],
            "license_url": m["license_url"],
            "run_count": count["n"] if count else 0,
            "cover_image_url": m["cover_image_url"],
            "weights_url": m["weights_url"],
            "default_example": example,
            "latest_version": self.version_json(latest) if latest else None,
            "is_official": bool(m["is_official"]),
        }

    def _model_or_404(self, request: Request, account: str) -> dict[str, Any]:
        m = self.core.registry.get_model(request.path_params["owner"], request.path_params["name"])
        if m is None or not self._visible(m, account):
            raise not_found()
        return m

    def _sorted_models(
        self, request: Request, account: str, text: str | None = None
    ) -> list[dict[str, Any]]:
        qp = request.query_params
        sort_by = qp.get("sort_by", "latest_version_created_at")
        direction = qp.get("sort_direction", "desc")
        if sort_by not in ("latest_version_created_at", "model_created_at"):
            raise input_validation(
                [
                    '- sort_by: sort_by must be one of the following: "model_created_at", "latest_version_created_at"'
                ]
            )
        if direction not in ("asc", "desc"):
            raise input_validation(
                ['- sort_direction: sort_direction must be one of the following: "asc", "desc"']
            )
        rows = self.core.store.query(
            "SELECT m.*, (SELECT MAX(v.created_at) FROM versions v WHERE v.owner = m.owner AND v.name = m.name) AS lv "
            "FROM models m"
        )
        rows = [r for r in rows if self._visible(r, account)]
        if text is not None:
            tokens = text.lower().split()

            def hay(r: dict[str, Any]) -> str:
                return " ".join(
                    str(x or "")
                    for x in (
                        r["owner"],
                        r["name"],
                        r["description"],
                        r["readme"],
                        " ".join(json.loads(r["tags"] or "[]")),
                    )
                ).lower()

            rows = [r for r in rows if all(t in hay(r) for t in tokens)]
        rev = direction == "desc"
        if sort_by == "model_created_at":
            rows.sort(key=lambda r: (r["created_at"], r["owner"], r["name"]), reverse=rev)
        else:
            with_v = sorted(
                [r for r in rows if r["lv"] is not None],
                key=lambda r: (r["lv"], r["owner"], r["name"]),
                reverse=rev,
            )
            rows = with_v + [r for r in rows if r["lv"] is None]
        return rows

    async def models_list(self, request: Request) -> Response:
        account = self.account(request)
        origin = self.origin(request)
        rows = self._sorted_models(request, account)
        page, nxt, prev = offset_page(request, origin, rows, self.core.config.page_sizes["models"])
        return json_response(
            {"next": nxt, "previous": prev, "results": [self.model_json(m, origin) for m in page]}
        )

    async def models_search(self, request: Request) -> Response:
        account = self.account(request)
        origin = self.origin(request)
        text = (await request.body()).decode("utf-8", "replace").strip()
        rows = self._sorted_models(request, account, text)
        page, nxt, prev = offset_page(request, origin, rows, self.core.config.page_sizes["models"])
        return json_response(
            {"next": nxt, "previous": prev, "results": [self.model_json(m, origin) for m in page]}
        )

    async def models_create(self, request: Request) -> Response:
        account = self.account(request)
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise input_validation(
                [f"- (root): Invalid type. Expected: object, given: {_json_type(body)}"]
            )
        allowed = {
            "owner",
            "name",
            "visibility",
            "hardware",
            "description",
            "github_url",
            "paper_url",
            "license_url",
            "cover_image_url",
        }
        lines = [
            f"- {k} is required"
            for k in ("owner", "name", "visibility", "hardware")
            if k not in body
        ]
        lines += [f"- Additional property {k} is not allowed" for k in body if k not in allowed]
        if "visibility" in body and body["visibility"] not in ("public", "private"):
            lines.append(
                '- visibility: visibility must be one of the following: "public", "private"'
            )
        if "hardware" in body and body["hardware"] not in {h["sku"] for h in HARDWARE}:
            lines.append(
                f"- hardware: hardware must be one of the following: {', '.join(json.dumps(h['sku']) for h in HARDWARE)}"
            )
        lines += [
            f"- {k}: Does not match format 'uri'"
            for k, v in body.items()
            if k.endswith("_url") and v is not None and not (isinstance(v, str) and _is_http_url(v))
        ]
        name = body.get("name")
        if isinstance(name, str) and not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
            lines.append("- name: Does not match pattern '^[a-z0-9][a-z0-9._-]*$'")
        if lines:
            raise input_validation(lines)
        if body["owner"] != account:
            raise ApiError(403, "You do not have permission to create models for this owner.")
        assert isinstance(name, str)
        if self.core.registry.get_model(body["owner"], name) is not None:
            raise ApiError(409, "A model with that name and owner already exists.")
        self.core.store.execute(
            "INSERT INTO models (owner, name, description, visibility, hardware, github_url, paper_url, license_url, "
            "cover_image_url, is_official, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'user', ?)",
            (
                body["owner"],
                name,
                body.get("description"),
                body["visibility"],
                body["hardware"],
                body.get("github_url"),
                body.get("paper_url"),
                body.get("license_url"),
                body.get("cover_image_url"),
                self.core.clock.now(),
            ),
        )
        m = self.core.registry.get_model(body["owner"], str(name))
        assert m is not None
        return json_response(self.model_json(m, self.origin(request)), 201)

    async def models_get(self, request: Request) -> Response:
        account = self.account(request)
        return json_response(
            self.model_json(self._model_or_404(request, account), self.origin(request))
        )

    async def models_update(self, request: Request) -> Response:
        account = self.account(request)
        m = self._model_or_404(request, account)
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise input_validation(
                [f"- (root): Invalid type. Expected: object, given: {_json_type(body)}"]
            )
        allowed = ("description", "github_url", "license_url", "paper_url", "readme", "weights_url")
        lines = [f"- Additional property {k} is not allowed" for k in body if k not in allowed]
        lines += [
            f"- {k}: Invalid type. Expected: string, given: {_json_type(v)}"
            for k, v in body.items()
            if k in allowed and v is not None and not isinstance(v, str)
        ]
        lines += [
            f"- {k}: Does not match format 'uri'"
            for k, v in body.items()
            if k.endswith("_url") and isinstance(v, str) and not _is_http_url(v)
        ]
        if lines:
            raise input_validation(lines)
        if m["owner"] != account and m["source"] != "callable":
            raise ApiError(403, "You do not have permission to update this model.")
        for k, v in body.items():
            self.core.store.execute(
                f"UPDATE models SET {k} = ? WHERE owner = ? AND name = ?",
                (v, m["owner"], m["name"]),
            )
        m2 = self.core.registry.get_model(m["owner"], m["name"])
        assert m2 is not None
        return json_response(self.model_json(m2, self.origin(request)))

    async def models_delete(self, request: Request) -> Response:
        account = self.account(request)
        m = self._model_or_404(request, account)
        if m["owner"] != account:
            raise ApiError(403, "You do not have permission to delete this model.")
        if m["visibility"] != "private" or self.core.registry.list_versions(m["owner"], m["name"]):
            raise ApiError(409, "Only private models with no versions can be deleted.")
        self.core.store.execute(
            "DELETE FROM models WHERE owner = ? AND name = ?", (m["owner"], m["name"])
        )
        return Response(status_code=204)

    async def models_readme(self, request: Request) -> Response:
        account = self.account(request)
        m = self._model_or_404(request, account)
        if not m["readme"]:
            raise not_found()
        return PlainTextResponse(m["readme"], media_type="text/plain; charset=utf-8")

    async def models_examples(self, request: Request) -> Response:
        account = self.account(request)
        m = self._model_or_404(request, account)
        origin = self.origin(request)
        rows = self.core.store.query_predictions(
            "model = ? AND is_example = 1",
            (f"{m['owner']}/{m['name']}",),
            "created_at DESC, id DESC",
            10000,
        )
        page, nxt, prev = keyset_page(
            request, origin, rows, self.core.config.page_sizes["examples"]
        )
        return json_response(
            {
                "next": nxt,
                "previous": prev,
                "results": [self.core.prediction_json(r, origin) for r in page],
            }
        )

    async def versions_list(self, request: Request) -> Response:
        account = self.account(request)
        m = self._model_or_404(request, account)
        origin = self.origin(request)
        rows = self.core.registry.list_versions(m["owner"], m["name"])
        page, nxt, prev = keyset_page(
            request, origin, rows, self.core.config.page_sizes["versions"]
        )
        return json_response(
            {"next": nxt, "previous": prev, "results": [self.version_json(v) for v in page]}
        )

    def _version_or_404(
        self, request: Request, account: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        m = self._model_or_404(request, account)
        v = self.core.registry.get_version(request.path_params["version_id"])
        if v is None or v["owner"] != m["owner"] or v["name"] != m["name"]:
            raise not_found()
        return m, v

    async def versions_get(self, request: Request) -> Response:
        account = self.account(request)
        _, v = self._version_or_404(request, account)
        return json_response(self.version_json(v))

    async def versions_delete(self, request: Request) -> Response:
        account = self.account(request)
        m, v = self._version_or_404(request, account)
        if m["source"] == "demo":
            raise ApiError(403, "You do not have permission to delete this version.")
        core = self.core
        rows = core.store.query("SELECT id, status FROM predictions WHERE version = ?", (v["id"],))
        for r in rows:
            if r["status"] not in TERMINAL:
                core.cancel_prediction(r["id"])
        for r in rows:
            core.files.remove_prediction_outputs(r["id"])
            core.store.execute("DELETE FROM events WHERE prediction_id = ?", (r["id"],))
        core.store.execute(
            "DELETE FROM predictions WHERE version = ? AND status IN ('succeeded','failed','canceled','aborted')",
            (v["id"],),
        )
        core.store.execute("DELETE FROM versions WHERE id = ?", (v["id"],))
        return Response(status_code=202)

    # ------------------------------------------------------------------ files
    async def files_create(self, request: Request) -> Response:
        account = self.account(request)
        core = self.core
        limit = core.files.max_upload_size
        too_large = ApiError(
            413, "Files must be less than 100MB in size", title="Content Too Large"
        )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit + 1024 * 1024:
            raise too_large
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise input_validation(["- content is required"])
        from starlette.formparsers import MultiPartException, MultiPartParser

        async def counted() -> Any:
            total = 0
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit + 1024 * 1024:
                    raise FileTooLarge()
                yield chunk

        try:
            form = await MultiPartParser(
                request.headers, counted(), max_files=10, max_fields=100
            ).parse()
        except FileTooLarge as exc:
            raise too_large from exc
        except MultiPartException as exc:
            raise ApiError(400, f"Invalid multipart body: {exc}") from exc
        try:
            content = form.get("content")
            if content is None or isinstance(content, str):
                if isinstance(content, str):
                    import io

                    data_src: Any = io.BytesIO(content.encode())
                    part_name, part_type = None, None
                else:
                    raise input_validation(["- content is required"])
            else:
                data_src = content.file
                part_name, part_type = content.filename, content.content_type
            filename = form.get("filename")
            filename = filename if isinstance(filename, str) and filename else (part_name or "file")
            if len(filename) > 255:
                raise input_validation(
                    ["- filename: String length must be less than or equal to 255"]
                )
            ftype = form.get("type")
            content_type = (
                ftype
                if isinstance(ftype, str) and ftype
                else (part_type or "application/octet-stream")
            )
            metadata_raw = form.get("metadata")
            metadata: Any = {}
            if isinstance(metadata_raw, str) and metadata_raw:
                try:
                    metadata = json.loads(metadata_raw)
                except ValueError as exc:
                    raise input_validation(["- metadata: must be a JSON object"]) from exc
                if not isinstance(metadata, dict):
                    raise input_validation(["- metadata: must be a JSON object"])
            try:
                row = await run_in_threadpool(
                    core.files.create_upload, account, data_src, filename, content_type, metadata
                )
            except FileTooLarge as exc:
                raise too_large from exc
        finally:
            await form.close()
        return json_response(
            core.files.file_json(row, self.origin(request)), 201, media_type=_JSON_UTF8
        )

    async def files_list(self, request: Request) -> Response:
        account = self.account(request)
        origin = self.origin(request)
        rows = self.core.files.list_uploads(account)
        page, nxt, prev = keyset_page(request, origin, rows, self.core.config.page_sizes["files"])
        return json_response(
            {
                "next": nxt,
                "previous": prev,
                "results": [self.core.files.file_json(r, origin) for r in page],
            },
            media_type=_JSON_UTF8,
        )

    async def files_get(self, request: Request) -> Response:
        account = self.account(request)
        row = self.core.files.get_upload(account, request.path_params["file_id"])
        if row is None:
            raise not_found("File not found")
        return json_response(
            self.core.files.file_json(row, self.origin(request)), media_type=_JSON_UTF8
        )

    async def files_delete(self, request: Request) -> Response:
        account = self.account(request)
        if not self.core.files.delete_upload(account, request.path_params["file_id"]):
            raise not_found("File not found")
        return Response(status_code=204)

    async def files_download(self, request: Request) -> Response:
        qp = request.query_params
        fid = request.path_params["file_id"]
        row = self.core.files.verify_download(
            fid, qp.get("owner", ""), qp.get("expiry", ""), qp.get("signature", "")
        )
        if row is None:
            raise not_found("File not found")
        name = row["name"].replace('"', "")
        return FileResponse(
            self.core.files.blob_path(row),
            media_type=row["content_type"],
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "ETag": f'"{row["md5"]}"',
            },
        )

    async def delivery(self, request: Request) -> Response:
        row = self.core.files.resolve_delivery(
            request.path_params["token"], request.path_params["filename"]
        )
        if row is None:
            raise not_found()
        return FileResponse(
            self.core.files.blob_path(row),
            media_type=row["content_type"],
            headers={"ETag": f'"{row["md5"]}"'},
        )

    # ------------------------------------------------------------------ streams
    async def stream(self, request: Request) -> Response:
        pid = self.core.pid_from_stream_token(request.path_params["token"])
        row = self.core.store.get_prediction(pid) if pid else None
        if row is None or row["data_removed"]:
            raise not_found()
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        drop_after = request.scope.get("state", {}).get("sse_drop_after")
        gen = event_stream(
            self.core,
            row["id"],
            self.origin(request),
            parse_last_event_id(last),
            drop_after=drop_after,
        )
        return StreamingResponse(
            gen, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    # ------------------------------------------------------------------ web pages
    async def web_prediction(self, request: Request) -> Response:
        row = self.core.store.get_prediction(request.path_params["id"])
        if row is None:
            raise not_found()
        import html

        data = html.escape(
            json.dumps(self.core.prediction_json(row, self.origin(request)), indent=2)
        )
        return HTMLResponse(
            f"<!doctype html><title>Prediction {row['id']}</title><h1>Prediction {row['id']}</h1><p>Local Replicate server</p><pre>{data}</pre>"
        )

    async def web_model(self, request: Request) -> Response:
        m = self.core.registry.get_model(request.path_params["owner"], request.path_params["name"])
        if m is None:
            raise not_found()
        import html

        return HTMLResponse(
            f"<!doctype html><title>{html.escape(m['owner'])}/{html.escape(m['name'])}</title><h1>{html.escape(m['owner'])}/{html.escape(m['name'])}</h1><p>{html.escape(m['description'] or '')}</p><pre>{html.escape(m['readme'] or '')}</pre>"
        )

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


INVALID_VERSION_TITLE = "Invalid version or not permitted"


def _wrap(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    return endpoint


def build_app(core: Core, *, lifespan: Any = None) -> Starlette:
    """The ASGI application for a ``Core``."""
    api = LocalApi(core)

    def r(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, _wrap(handler), methods=methods)

    routes = [
        r("/_local/health", api.health, ["GET"]),
        r("/_local/faults", api.ctl_faults, ["GET", "POST", "DELETE"]),
        r("/_local/clock", api.ctl_clock, ["GET", "POST"]),
        r("/_local/requests", api.ctl_requests, ["GET", "DELETE"]),
        r("/_local/webhooks/deliveries", api.ctl_deliveries, ["GET"]),
        r("/_local/files/{file_id}/signed-url", api.ctl_signed_url, ["GET"]),
        r("/_local/reset", api.ctl_reset, ["POST"]),
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
        return problem(
            {"title": "Internal server error", "detail": "Internal server error", "status": 500},
            500,
            {"x-request-id": rid},
        )

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.core = core
    app.state.api = api
    app.add_middleware(LocalMiddleware, core=core, faults=api.faults, requests=api.requests)
    return app
