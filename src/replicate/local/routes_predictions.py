"""Prediction routes: create (by version / model), get, list, cancel, and SSE streams."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    Response,
)

from .errors import ApiError, input_validation, invalid_version, not_found, throttled
from .gate import MAX_DEADLINE, duration
from .routes_base import (
    _PREFER_WAIT,
    INVALID_VERSION_TITLE,
    BaseRoutes,
    _json_type,
    json_response,
    sql_keyset_page,
    webhook_fields,
)
from .runner import TERMINAL, QueueFull
from .schema import validate_input
from .sse import EventStreamResponse, parse_last_event_id
from .util import header, iso, parse_iso

log = logging.getLogger("replicate.local")


class PredictionRoutes(BaseRoutes):
    """Prediction routes: create (by version / model), get, list, cancel, and SSE streams."""

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
        self,
        request: Request,
        account: str,
        body: dict[str, Any],
        version: dict[str, Any],
        *,
        deployment: str | None = None,
    ) -> Response:
        """Validate and create a prediction of ``version`` (``deployment``: ``owner/name``
        of the deployment it runs for, stored with the prediction from its insertion on)."""
        core = self.core
        # A Cog version whose directory is gone or whose code changed since cannot run.
        cog = core.cog.models.get(version["id"]) if core.cog is not None else None
        if core.registry.impl(version["id"]) is None or (
            cog is not None and not await asyncio.to_thread(cog.source_available)
        ):
            raise ApiError(
                422, "This version's source is no longer available", title=INVALID_VERSION_TITLE
            )
        scope = request.scope
        # Prefer
        prefer_raw = header(scope, b"prefer")
        wait: float | None = None
        applied: str | None = None
        if prefer_raw == "wait":  # the clients' usual header
            wait, applied = 60.0, prefer_raw
        elif prefer_raw is not None:
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
                wait = min(60.0, float(m.group(2))) if m.group(2) else 60.0
                applied = pref
        # Cancel-After
        deadline: float | None = None
        cancel_after = header(scope, b"cancel-after")
        if cancel_after is not None:
            try:
                deadline = duration(cancel_after, "Cancel-After", minimum=5, maximum=MAX_DEADLINE)
            except ValueError as exc:
                raise ApiError(
                    422,
                    f"Invalid Cancel-After header {cancel_after[:40]!r}: use a duration such as 30s, 5m or 1h (from 5s to {MAX_DEADLINE / 3600:g}h)",
                    title="Invalid Cancel-After header",
                ) from exc
        webhook, events_filter, lines = webhook_fields(body, core.own)
        if lines:
            raise input_validation(lines)
        # input
        issues = validate_input(version["openapi_schema"], body["input"], core.own)
        if issues:
            raise input_validation([f"- {i['field']}: {i['description']}" for i in issues], issues)
        if core.runner.queue_depth(version["id"]) >= core.runner.max_queue_depth:
            raise throttled(1)
        origin = self.origin(request)
        try:
            row = core.create_prediction(
                account=account,
                version=version,
                input=body["input"],
                origin=origin,
                webhook=webhook,
                webhook_events_filter=events_filter,
                deadline_seconds=deadline,
                deployment=deployment,
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
        if core.store.pending(row["id"]):  # an inline run's: tell of it once committed
            await core.store.durable()
        inline = wait is not None and status == 201 and core.config.sync_file_outputs == "data-uri"
        out = core.prediction_json(row, origin, inline_files=inline)
        if status == 202:
            headers["Location"] = out["urls"]["get"]
        return json_response(out, status, headers)

    async def _wait_for(self, pid: str, seconds: float) -> dict[str, Any]:
        core = self.core
        if not core.runner.is_active(pid):  # ended already (an inline run): nothing to wait on
            row = core.store.get_prediction(pid)
            if row is not None and row["status"] in TERMINAL:
                return row
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            ev = core.hub.register(pid)
            try:
                remaining = deadline - loop.time()
                if remaining > 0 and core.runner.is_active(pid):
                    # Not finished (its end will set ``ev``, registered first): no need to
                    # read the row at every change, only once it ends or the wait does.
                    row = None
                else:
                    row = core.store.get_prediction(pid)
                    assert row is not None
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
        model, version = self.core.registry.model_and_latest(owner, name)
        if model is None or not self._visible(model, account):
            raise not_found()
        if version is None:
            raise invalid_version()
        return await self._create(request, account, body, version)

    async def predictions_get(self, request: Request) -> Response:
        account = self.account(request)
        # Training ids resolve here too (the real API's training create answer has been seen
        # pointing at /v1/predictions/{id}), in the training object's shape.
        row = self.core.get_prediction(account, request.path_params["id"])
        if row is None:
            raise not_found()
        if self.core.store.pending(row["id"]):
            await self.core.store.durable()
        return json_response(self._shown(row, self.origin(request)))

    async def predictions_cancel(self, request: Request) -> Response:
        account = self.account(request)
        pid = request.path_params["id"]
        row = self.core.get_prediction(account, pid)
        if row is None:
            raise not_found()
        if row["status"] not in TERMINAL:
            self.core.cancel_prediction(pid)
            row = await self._wait_for(pid, 1.0)
        return json_response(self.core.object_json(row, self.origin(request)))

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
        store = self.core.store

        def fetch(cond: str, extra: list[Any], order: str, limit: int) -> list[dict[str, Any]]:
            return store.query(
                f"SELECT * FROM predictions WHERE {where} AND {cond} ORDER BY {order} LIMIT {int(limit)}",
                [*params, *extra],
            )

        page, nxt, prev = sql_keyset_page(
            request, origin, fetch, self.core.config.page_sizes["predictions"]
        )
        results = [self._listed(r, origin) for r in page]
        return json_response({"next": nxt, "previous": prev, "results": results})

    def _listed(self, raw: dict[str, Any], origin: str) -> dict[str, Any]:
        """A raw row as listed (see ``_shown``)."""
        return self._shown(self.core.store.decode_prediction(dict(raw)) or raw, origin)

    def _shown(self, row: dict[str, Any], origin: str) -> dict[str, Any]:
        """A decoded row as the API shows it; one that cannot be rendered (stored by an older
        server, or damaged) is shown with what can be read, and never fails a reply."""
        try:
            return self.core.object_json(row, origin)
        except Exception:
            log.warning("prediction %s cannot be rendered", row.get("id"), exc_info=True)
        return {
            "id": row.get("id"),
            "model": row.get("model"),
            "version": row.get("version"),
            "status": row.get("status"),
            "error": "This prediction's stored data cannot be shown",
            "created_at": iso(row.get("created_at")),
            "urls": {"get": f"{origin}/v1/predictions/{row.get('id')}"},
        }

    # ------------------------------------------------------------------ streams
    async def stream(self, request: Request) -> Response:
        pid = self.core.pid_from_stream_token(request.path_params["token"])
        row = self.core.store.get_prediction(pid) if pid else None
        if row is None or row["data_removed"]:
            raise not_found()
        last = request.headers.get("last-event-id") or (
            request.query_params.get("last_event_id") if request.scope["query_string"] else None
        )
        drop_after = request.scope.get("state", {}).get("sse_drop_after")
        try:
            last_seq = parse_last_event_id(last)
        except ValueError as exc:
            raise ApiError(400, f"Invalid Last-Event-ID: {exc}") from exc
        return EventStreamResponse(self.core, row["id"], self.origin(request), last_seq, drop_after)
