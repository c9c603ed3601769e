"""Deployments: create, get, list, update (releases), delete, predictions.

A deployment is ``owner/name`` plus numbered releases; each create or update adds a release
holding the model, version and configuration (hardware, min/max instances). Predictions
through a deployment run the current release's version through the same create path as
``models.predictions.create`` (``Prefer: wait``, ``Cancel-After``, webhooks, streaming), with
``deployment`` set on the prediction.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import ApiError, input_validation, invalid_version, not_found
from ..routes_base import json_response, keyset_page
from ..routing import Wrap, api_of
from ..util import iso
from ._common import account_json, catalogue_of, json_type, require_object

if TYPE_CHECKING:
    from ..core import Core

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_CREATE_KEYS = ("name", "model", "version", "hardware", "min_instances", "max_instances")
_UPDATE_KEYS = ("version", "hardware", "min_instances", "max_instances")
_LIMITS = {"min_instances": (0, 5), "max_instances": (0, 20)}


def _hardware_skus() -> list[str]:
    from ..core import HARDWARE

    return [h["sku"] for h in HARDWARE]


def _check_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> list[str]:
    """Type, enum and range problems of deployment fields, as ``- field: ...`` lines."""
    # Unknown keys are ignored: the spec's deployment bodies allow additional properties
    # (unlike prediction requests, which set ``additionalProperties: false``).
    lines: list[str] = []
    for key in ("name", "model", "version", "hardware"):
        if key in body and key in allowed and not isinstance(body[key], str):
            lines.append(f"- {key}: Invalid type. Expected: string, given: {json_type(body[key])}")
    for key, (lo, hi) in _LIMITS.items():
        if key not in body or key not in allowed:
            continue
        v = body[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            lines.append(f"- {key}: Invalid type. Expected: integer, given: {json_type(v)}")
        elif v < lo:
            lines.append(f"- {key}: Must be greater than or equal to {lo}")
        elif v > hi:
            lines.append(f"- {key}: Must be less than or equal to {hi}")
    hw = body.get("hardware")
    if "hardware" in allowed and isinstance(hw, str) and hw not in _hardware_skus():
        choices = ", ".join(json.dumps(s) for s in _hardware_skus())
        lines.append(f"- hardware: hardware must be one of the following: {choices}")
    name = body.get("name")
    if "name" in allowed and isinstance(name, str) and not _NAME.fullmatch(name):
        lines.append("- name: Does not match pattern '^[a-z0-9][a-z0-9._-]*$'")
    return lines


class Deployments:
    """Handlers of the deployment endpoints for one core."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.state = catalogue_of(core)

    # ------------------------------------------------------------------ storage
    def _get_row(self, owner: str, name: str) -> dict[str, Any] | None:
        return self.core.store.one(
            "SELECT * FROM deployments WHERE owner = ? AND name = ?", (owner, name)
        )

    def current_release(self, owner: str, name: str) -> dict[str, Any] | None:
        """The newest release of a deployment."""
        return self.core.store.one(
            "SELECT * FROM deployment_releases WHERE owner = ? AND name = ? "
            "ORDER BY number DESC LIMIT 1",
            (owner, name),
        )

    def deployment_json(self, row: dict[str, Any]) -> dict[str, Any]:
        """``{owner, name, current_release{...}}``."""
        rel = self.current_release(row["owner"], row["name"])
        out: dict[str, Any] = {"owner": row["owner"], "name": row["name"]}
        if rel is not None:
            out["current_release"] = {
                "number": rel["number"],
                "model": rel["model"],
                "version": rel["version"],
                "created_at": iso(rel["created_at"]),
                "created_by": json.loads(rel["created_by"]),
                "configuration": {
                    "hardware": rel["hardware"],
                    "min_instances": rel["min_instances"],
                    "max_instances": rel["max_instances"],
                },
            }
        return out

    def _add_release(
        self, owner: str, name: str, account: str, config: dict[str, Any], now: float
    ) -> None:
        rel = self.current_release(owner, name)
        number = rel["number"] + 1 if rel else 1
        self.core.store.execute(
            "INSERT INTO deployment_releases (owner, name, number, model, version, hardware, "
            "min_instances, max_instances, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                owner,
                name,
                number,
                config["model"],
                config["version"],
                config["hardware"],
                int(config["min_instances"]),
                int(config["max_instances"]),
                now,
                json.dumps(account_json(self.core, account)),
            ),
        )
        if int(config["min_instances"]) >= 1:
            self._keep_warm(config["version"])

    def _keep_warm(self, version_id: str) -> None:
        """Pre-start the version's worker (``min_instances >= 1``).

        Callables run in-process and need nothing. A runner that has workers to start (Cog)
        can expose ``keep_warm()`` on the version's callable; it is called in the background.
        """
        impl = self.core.registry.impl(version_id)
        warm = getattr(impl.fn, "keep_warm", None) if impl is not None else None
        if callable(warm):
            threading.Thread(target=warm, name="replicate-local-warm", daemon=True).start()

    def _deployment_or_404(self, request: Request, account: str) -> dict[str, Any]:
        owner = request.path_params["owner"]
        name = request.path_params["name"]
        row = self._get_row(owner, name) if owner == account else None
        if row is None:
            raise not_found()
        return row

    def _check_version(self, model: str, version_id: str) -> dict[str, Any]:
        v = self.core.registry.get_version(version_id)
        if v is None or f"{v['owner']}/{v['name']}" != model:
            raise invalid_version()
        return v

    def uses_version(self, version_id: str) -> bool:
        """Whether a deployment's current release runs ``version_id``."""
        rows = self.core.store.query(
            "SELECT r.version FROM deployment_releases r JOIN deployments d "
            "ON d.owner = r.owner AND d.name = r.name WHERE r.number = "
            "(SELECT MAX(number) FROM deployment_releases r2 WHERE r2.owner = r.owner AND r2.name = r.name)"
        )
        return any(r["version"] == version_id for r in rows)

    # ------------------------------------------------------------------ handlers
    async def create(self, request: Request) -> Response:
        """``POST /v1/deployments`` (200, as the real API answers)."""
        api = api_of(request)
        account = api.account(request)
        body = require_object(await api.json_body(request))
        lines = [f"- {k} is required" for k in _CREATE_KEYS if k not in body]
        lines += _check_fields(body, _CREATE_KEYS)
        if lines:
            raise input_validation(lines)
        model = body["model"]
        parts = model.split("/")
        m = self.core.registry.get_model(parts[0], parts[1]) if len(parts) == 2 else None
        if m is None or not (m["visibility"] == "public" or m["owner"] == account):
            raise ApiError(404, "The specified model does not exist")
        self._check_version(model, body["version"])
        now = self.core.clock.now()
        with self.state.lock:
            if self._get_row(account, body["name"]) is not None:
                raise ApiError(409, "A deployment with that name already exists.")
            self.core.store.execute(
                "INSERT INTO deployments (owner, name, created_at) VALUES (?, ?, ?)",
                (account, body["name"], now),
            )
            self._add_release(account, body["name"], account, body, now)
        row = self._get_row(account, body["name"])
        assert row is not None
        return api_json(self.deployment_json(row))

    async def get(self, request: Request) -> Response:
        """``GET /v1/deployments/{owner}/{name}``."""
        api = api_of(request)
        account = api.account(request)
        return api_json(self.deployment_json(self._deployment_or_404(request, account)))

    async def list(self, request: Request) -> Response:
        """``GET /v1/deployments``: newest first, keyset-paginated."""

        api = api_of(request)
        account = api.account(request)
        origin = api.origin(request)
        rows = self.core.store.query(
            "SELECT * FROM deployments WHERE owner = ? ORDER BY created_at DESC, name DESC",
            (account,),
        )
        for r in rows:
            r["id"] = r["name"]
        page, nxt, prev = keyset_page(request, origin, rows, self.state.page_size("deployments"))
        return api_json(
            {
                "next": nxt,
                "previous": prev,
                "results": [self.deployment_json(r) for r in page],
            }
        )

    async def update(self, request: Request) -> Response:
        """``PATCH /v1/deployments/{owner}/{name}``: every change adds release ``number + 1``."""
        api = api_of(request)
        account = api.account(request)
        row = self._deployment_or_404(request, account)
        body = require_object(await api.json_body(request))
        lines = _check_fields(body, _UPDATE_KEYS)
        if lines:
            raise input_validation(lines)
        with self.state.lock:
            rel = self.current_release(row["owner"], row["name"])
            assert rel is not None
            config = {
                "model": rel["model"],
                "version": rel["version"],
                "hardware": rel["hardware"],
                "min_instances": rel["min_instances"],
                "max_instances": rel["max_instances"],
            }
            changed = {k: body[k] for k in _UPDATE_KEYS if k in body and body[k] != config[k]}
            if "version" in changed:
                self._check_version(rel["model"], changed["version"])
            config.update({k: body[k] for k in _UPDATE_KEYS if k in body})
            if any(k in body for k in _UPDATE_KEYS):
                self._add_release(row["owner"], row["name"], account, config, self.core.clock.now())
        return api_json(self.deployment_json(row))

    async def delete(self, request: Request) -> Response:
        """``DELETE /v1/deployments/{owner}/{name}`` (204); running predictions finish."""
        api = api_of(request)
        account = api.account(request)
        row = self._deployment_or_404(request, account)
        with self.core.store.transaction():
            self.core.store.execute(
                "DELETE FROM deployment_releases WHERE owner = ? AND name = ?",
                (row["owner"], row["name"]),
            )
            self.core.store.execute(
                "DELETE FROM deployments WHERE owner = ? AND name = ?", (row["owner"], row["name"])
            )
        return Response(status_code=204)

    async def predictions_create(self, request: Request) -> Response:
        """``POST /v1/deployments/{owner}/{name}/predictions`` (201/202, ``deployment`` set)."""
        api = api_of(request)
        account = api.account(request)
        body = api._validate_create(await api.json_body(request), with_version=False)
        row = self._deployment_or_404(request, account)
        rel = self.current_release(row["owner"], row["name"])
        version = self.core.registry.get_version(rel["version"]) if rel else None
        if version is None:
            raise invalid_version()
        ref = f"{row['owner']}/{row['name']}"
        return await api._create(request, account, body, version, deployment=ref)


def api_json(value: Any, status: int = 200) -> Response:
    """Compact JSON response."""

    return json_response(value, status)


def routes(core: Core, wrap: Wrap) -> list[Route]:
    """The deployment routes."""
    d = Deployments(core)
    return [
        Route("/v1/deployments", wrap(d.list), methods=["GET"]),
        Route("/v1/deployments", wrap(d.create), methods=["POST"]),
        Route("/v1/deployments/{owner}/{name}", wrap(d.get), methods=["GET"]),
        Route("/v1/deployments/{owner}/{name}", wrap(d.update), methods=["PATCH"]),
        Route("/v1/deployments/{owner}/{name}", wrap(d.delete), methods=["DELETE"]),
        Route(
            "/v1/deployments/{owner}/{name}/predictions",
            wrap(d.predictions_create),
            methods=["POST"],
        ),
    ]
