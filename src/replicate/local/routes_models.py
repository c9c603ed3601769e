"""Model and version routes: get, list, QUERY search, create, update, delete, readme, examples."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    Response,
)

from .core import HARDWARE
from .errors import ApiError, input_validation, not_found
from .registry import CALLABLE_COG_VERSION
from .routes_base import (
    BaseRoutes,
    _is_http_url,
    _json_type,
    json_response,
    keyset_page,
    offset_page,
)
from .runner import TERMINAL
from .util import iso


class ModelRoutes(BaseRoutes):
    """Model and version routes: get, list, QUERY search, create, update, delete, readme, examples."""

    # ------------------------------------------------------------------ models

    def version_json(self, v: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": v["id"],
            "created_at": iso(v["created_at"]),
            # Rows written before every version had one still answer a string.
            "cog_version": v["cog_version"] or CALLABLE_COG_VERSION,
            "openapi_schema": v["openapi_schema"],
        }

    def model_json(self, m: dict[str, Any], origin: str, *, search: bool = False) -> dict[str, Any]:
        """The API's model object (``search``: the key set of ``QUERY /v1/models`` results)."""
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
        out: dict[str, Any] = {
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
            "created_at": iso(m["created_at"]),
        }
        if search:
            del out["is_official"], out["weights_url"]
        return out

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
            {
                "next": nxt,
                "previous": prev,
                "results": [self.model_json(m, origin, search=True) for m in page],
            }
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
        nullable = {"description", "github_url", "paper_url", "license_url", "cover_image_url"}
        wrong = {
            k
            for k, v in body.items()
            if k in allowed and not isinstance(v, str) and not (v is None and k in nullable)
        }
        lines += [
            f"- {k}: Invalid type. Expected: string, given: {_json_type(body[k])}"
            for k in sorted(wrong)
        ]
        body = {k: v for k, v in body.items() if k not in wrong}
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
        from .catalogue import version_in_use

        why = version_in_use(core, v["id"])
        if why is not None:
            raise ApiError(409, why)
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
