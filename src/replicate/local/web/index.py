"""The server's front page (``/``): how to use the API, the models (each linking to its page and
playground) and the recent predictions with their outputs.

A browser gets HTML; a client that asks for JSON only (``Accept: application/json``) gets a small
JSON document with the same pointers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from .common import document, e, headers, model_href, table, when
from .model import prediction_list

if TYPE_CHECKING:
    from ..core import Core

__all__ = ["index_page", "render_index"]

#: Predictions listed on the front page.
INDEX_PREDICTIONS = 20


def _models(core: Core) -> list[dict[str, Any]]:
    """Models shown on the front page, latest version first (private ones only in any-token mode,
    where the API lists them to anyone anyway)."""
    rows = core.store.query(
        "SELECT m.*, (SELECT MAX(v.created_at) FROM versions v "
        "WHERE v.owner = m.owner AND v.name = m.name) AS lv, "
        "(SELECT COUNT(*) FROM predictions p WHERE p.model = m.owner || '/' || m.name "
        "AND p.is_example = 0) AS runs FROM models m "
        "ORDER BY lv IS NULL, lv DESC, m.owner, m.name"
    )
    if core.config.tokens is not None:
        rows = [r for r in rows if r.get("visibility") == "public"]
    return rows


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "json" in accept and "text/html" not in accept


def render_index(core: Core, origin: str) -> str:
    """The front page's HTML."""
    parts = [
        "<h1>Local Replicate server</h1>",
        '<p class="meta">A Replicate-compatible API for development and tests. Open a model to '
        "read about it and try it in its playground.</p>",
        "<h2>Use the API</h2>",
        f'<pre id="usage">export REPLICATE_BASE_URL={e(origin)}\n'
        "export REPLICATE_API_TOKEN=<your token>\n"
        "replicate run replicate/hello-world -i text=world</pre>",
    ]
    rows = []
    for m in _models(core):
        ref = f"{m['owner']}/{m['name']}"
        href = model_href(ref)
        name = f'<a href="{href}">{e(ref)}</a>' if href else e(ref)
        rows.append(
            f'<tr class="model"><td>{name}</td><td>{e(m.get("description") or "")}</td>'
            f"<td class=meta>{int(m.get('runs') or 0)}</td><td class=meta>{when(m.get('lv'))}</td></tr>"
        )
    head = "<tr><th>Model</th><th>Description</th><th>Runs</th><th>Latest version</th></tr>"
    parts.append("<h2>Models</h2>")
    parts.append(
        table(head + "".join(rows), "models") if rows else '<p class="note">No models yet.</p>'
    )
    if core.config.tokens is None:
        # Any token may list predictions through the API in this mode; with configured tokens
        # prediction ids stay private (see the model page).
        recent = core.store.query_predictions(
            "is_example = 0 AND kind = 'prediction'",
            (),
            "created_at DESC, id DESC",
            INDEX_PREDICTIONS,
        )
        parts.append("<h2>Recent predictions</h2>")
        parts.append(
            prediction_list(core, recent, origin, with_model=True)
            if recent
            else '<p class="note">No predictions yet.</p>'
        )
    return document("Local Replicate server", "".join(parts))


def index_page(core: Core, request: Request, origin: str) -> Response:
    """``GET /``: the front page, or its JSON form for clients that accept only JSON."""
    if _wants_json(request):
        models = [f"{m['owner']}/{m['name']}" for m in _models(core)]
        return JSONResponse(
            {
                "api": f"{origin}/v1",
                "web": f"{origin}/",
                "models": {ref: f"{origin}/web/{ref}" for ref in models},
            },
            headers=headers(),
        )
    return HTMLResponse(render_index(core, origin), headers=headers())
