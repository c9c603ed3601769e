"""A prediction's (or training's) page behind ``urls.web`` (``/web/p/{id}``).

Server-rendered: status, model, times, error, output (images, audio and video inline through their
delivery URLs, small text files in ``<pre>``), input and logs. While the prediction runs, a small
script (``static/live.js``, allowed by the page's CSP nonce) polls ``?format=json&since=N`` on the
same page for the status and the new log text, and reloads the page once the prediction is
terminal, so the output is rendered by the server.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..runner import TERMINAL
from .common import (
    Files,
    concatenate,
    document,
    e,
    headers,
    input_table,
    logs_box,
    model_href,
    not_found_page,
    render_output,
    static_text,
    when,
)

if TYPE_CHECKING:
    from ..core import Core

#: Milliseconds between polls of a running prediction.
POLL_MS = 500


def render_prediction(
    core: Core, row: dict[str, Any], origin: str, *, nonce: str | None = None
) -> str:
    """The HTML page of a decoded prediction (or training) row."""
    pid = str(row["id"])
    status = str(row["status"])
    kind = "Training" if row.get("kind") == "training" else "Prediction"
    model = str(row["model"] or "")
    version = core.registry.get_version(row["version"]) if row.get("version") else None
    parts = [f"<h1>{e(kind)} {e(pid)}</h1>"]
    href = model_href(model)
    model_link = f'<a href="{href}">{e(model)}</a>' if href else e(model)
    meta = [
        f'<span>Status: <b id="status" class="status {e(status)}">{e(status)}</b></span>',
        f"<span>Model: {model_link}</span>",
    ]
    if row.get("version"):
        meta.append(f"<span>Version: <code>{e(str(row['version'])[:12])}</code></span>")
    if row.get("deployment"):
        meta.append(f"<span>Deployment: {e(row['deployment'])}</span>")
    parts.append(f'<p class="meta">{"".join(meta)}</p>')
    times = [f"<span>Created {when(row['created_at'])}</span>"]
    if row.get("started_at") is not None:
        times.append(f"<span>Started {when(row['started_at'])}</span>")
    if row.get("completed_at") is not None:
        times.append(f"<span>Completed {when(row['completed_at'])}</span>")
    metrics = row.get("metrics") or {}
    if isinstance(metrics, dict) and isinstance(metrics.get("predict_time"), (int, float)):
        times.append(f"<span>Predict time {metrics['predict_time']:.2f} s</span>")
    parts.append(f'<p class="meta">{"".join(times)}</p>')
    if row.get("data_removed"):
        parts.append(
            '<p class="note">The input, output and logs of this prediction have been removed.</p>'
        )
    if row.get("error"):
        parts.append(f'<h2>Error</h2><pre class="error" id="error">{e(row["error"])}</pre>')
    files = Files(core, origin)
    files.collect(row.get("output"))
    output = core.files.render(row.get("output"), origin)
    concat = concatenate(version["openapi_schema"] if version else None)
    if status in TERMINAL or output is not None:
        parts.append(
            f'<h2>Output</h2><div id="output">{render_output(output, files, concat=concat)}</div>'
        )
    else:
        parts.append('<h2>Output</h2><div id="output"><p class="note">Not ready yet.</p></div>')
    parts.append(f"<h2>Input</h2>{input_table(row.get('input'))}")
    logs = str(row.get("logs") or "")
    parts.append(f"<h2>Logs</h2>{logs_box(logs)}")
    live = status not in TERMINAL
    if live:
        parts.append(
            f'<p class="note" id="live" data-since="{len(logs)}" data-poll="{POLL_MS}">'
            "Live: this page updates while the prediction runs.</p>"
        )
    api = f"{origin}/v1/{'trainings' if kind == 'Training' else 'predictions'}/{pid}"
    parts.append(f'<h2>API</h2><p class="meta"><code>GET {e(api)}</code> (needs an API token)</p>')
    script = static_text("live.js") if live else ""
    return document(f"{kind} {pid} ({status})", "".join(parts), nonce=nonce, script=script)


def prediction_json(row: dict[str, Any], since: int) -> dict[str, Any]:
    """The live-update document: status, log text after ``since`` and whether it is over."""
    logs = str(row.get("logs") or "")
    reset = since < 0 or since > len(logs)
    return {
        "status": row["status"],
        "logs": logs if reset else logs[since:],
        "since": len(logs),
        "reset": reset,
        "terminal": row["status"] in TERMINAL,
        "error": row.get("error"),
    }


def prediction_page(core: Core, request: Request, origin: str) -> Response:
    """``GET /web/p/{id}``: the page, or with ``?format=json`` the live-update document."""
    pid = request.path_params["id"]
    row = core.store.get_prediction(pid)
    if request.query_params.get("format") == "json":
        if row is None:
            return JSONResponse({"detail": "Not found", "status": 404}, 404, headers())
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            since = -1
        return JSONResponse(prediction_json(row, since), headers=headers())
    if row is None:
        return not_found_page(f"Prediction {pid}")
    nonce = None if row["status"] in TERMINAL else secrets.token_urlsafe(16)
    return HTMLResponse(render_prediction(core, row, origin, nonce=nonce), headers=headers(nonce))
