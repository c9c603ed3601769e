"""Minimal HTML pages behind ``urls.web`` (``/web/p/{id}``) and a model's ``url`` (``/web/{owner}/{name}``).

Small and dependency-free: server-rendered HTML with a tiny inline stylesheet. Everything that comes
from users or models (inputs, logs, outputs, errors, descriptions, READMEs, schema text) goes through
:func:`html.escape`; links and media sources are only emitted for ``http(s)`` URLs (and ``data:``
URIs of the matching media type), and a strict ``Content-Security-Policy`` (scripts only with the
page's nonce) backs that up.

Output files are shown inline through their delivery URLs: images as ``<img>``, audio and video with
controls, small text files in ``<pre>``. While a prediction runs, a small inline script polls
``?format=json&since=N`` on the same page for the status and the new log text, and reloads the page
once the prediction is terminal (so the output is rendered by the server).
"""

from __future__ import annotations

import html
import json
import mimetypes
import secrets
import urllib.parse
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from .files import DELIVERY_PREFIX
from .runner import TERMINAL
from .util import iso

if TYPE_CHECKING:
    from .core import Core

__all__ = ["model_page", "prediction_page", "render_model", "render_prediction"]

#: Text output files up to this size are shown inline.
MAX_INLINE_TEXT = 64 * 1024
#: Strings longer than this are cut in input tables (``data:`` URIs, huge prompts).
MAX_INPUT_CHARS = 4000
#: Predictions and examples listed on a model page.
MODEL_PAGE_PREDICTIONS = 10
#: Milliseconds between polls of a running prediction.
POLL_MS = 500

_CSS = """
:root{color-scheme:light;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif}
body{margin:0 auto;max-width:960px;padding:16px 24px;color:#1b1b1f;background:#fff}
header.top{font-size:13px;color:#666;border-bottom:1px solid #eee;padding-bottom:6px}
h1{font-size:22px;margin:12px 0 4px;word-break:break-all}h2{font-size:16px;margin:22px 0 8px}
a{color:#0b57d0}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid #e3e6ea;border-radius:6px;padding:10px;overflow:auto;
white-space:pre-wrap;word-break:break-word;font-size:13px;margin:0}
pre.logs{background:#111;color:#e6e6e6;max-height:420px}pre.logs:empty::before{content:"No logs";color:#888}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #eee;padding:6px 8px;text-align:left;vertical-align:top}
th{color:#555;font-weight:600;white-space:nowrap}td pre{padding:4px 6px}table.input th{width:1%}
.status{display:inline-block;padding:2px 10px;border-radius:12px;font-size:13px;font-weight:600;
background:#e8eaed;color:#333}
.succeeded{background:#d7f5dd;color:#106b21}.failed{background:#fde2e1;color:#a4161a}
.processing{background:#dbe9ff;color:#0b4aa8}.canceled,.aborted{background:#fff1cc;color:#7a5300}
.meta{color:#555;font-size:13px}.meta span{margin-right:14px}
.media{margin:8px 0}.media img,.media video{max-width:100%;max-height:640px;border:1px solid #e3e6ea;
background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 0 0/16px 16px}
.media .cap{font-size:12px;color:#666}.error{border-color:#f5b5b3;background:#fff5f5;color:#a4161a}
.note{color:#666;font-style:italic}
"""

_LIVE_JS = """
(function () {
  var live = document.getElementById("live");
  var since = parseInt(live.getAttribute("data-since"), 10) || 0;
  var status = document.getElementById("status");
  var logs = document.getElementById("logs");
  function tick() {
    fetch(location.pathname + "?format=json&since=" + since, {cache: "no-store"})
      .then(function (r) {
        if (r.status === 404) { live.textContent = "This prediction no longer exists."; return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (d) {
        if (d === null) { return; }
        status.textContent = d.status;
        status.className = "status " + d.status;
        if (d.reset) { logs.textContent = d.logs; } else if (d.logs) { logs.textContent += d.logs; }
        logs.scrollTop = logs.scrollHeight;
        since = d.since;
        if (d.terminal) { location.reload(); return; }
        setTimeout(tick, %(poll)d);
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, %(poll)d);
})();
"""


def e(value: Any) -> str:
    """HTML-escape any value (quotes included, so the result is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def _safe_url(url: Any) -> str | None:
    """``url`` if it is an absolute ``http(s)`` URL (never ``javascript:`` and friends)."""
    if not isinstance(url, str) or not url.isprintable():
        return None
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url.strip()
    return None


def _data_uri_type(value: str) -> str | None:
    """The media type of a ``data:`` URI, or None when ``value`` is not one."""
    if not value.startswith("data:"):
        return None
    head = value[5:].split(",", 1)[0]
    return head.split(";", 1)[0].strip().lower() or "text/plain"


def _when(ts: float | None) -> str:
    """A timestamp for people: ``2026-01-02 03:04:05 UTC`` (ISO 8601 in the title)."""
    if ts is None:
        return ""
    text = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{e(iso(ts))}">{e(text)}</time>'


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _headers(nonce: str | None = None) -> dict[str, str]:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    csp = (
        "default-src 'none'; img-src * data: blob:; media-src * data: blob:; "
        f"style-src 'unsafe-inline'; script-src {script}; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _document(title: str, body: str, *, nonce: str | None = None, script: str = "") -> str:
    js = f'<script nonce="{e(nonce)}">{script}</script>' if nonce and script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>"
        '<header class="top">Local Replicate server</header>'
        f"{body}{js}</body></html>"
    )


def not_found_page(what: str) -> HTMLResponse:
    """An HTML 404 page."""
    body = f"<h1>Not found</h1><p>{e(what)} could not be found on this server.</p>"
    return HTMLResponse(_document("Not found", body), status_code=404, headers=_headers())


# ---------------------------------------------------------------------------- values and files


class _Files:
    """Content types and sizes of a prediction's delivered output files, by absolute URL."""

    def __init__(self, core: Core, origin: str) -> None:
        self.core = core
        self.origin = origin
        self.rows: dict[str, dict[str, Any]] = {}

    def collect(self, value: Any) -> None:
        if isinstance(value, str) and value.startswith(DELIVERY_PREFIX):
            token, _, filename = value[len(DELIVERY_PREFIX) :].partition("/")
            row = self.core.files.resolve_delivery(token, filename)
            if row is not None:
                self.rows[self.core.files.render(value, self.origin)] = row
        elif isinstance(value, list):
            for v in value:
                self.collect(v)
        elif isinstance(value, dict):
            for v in value.values():
                self.collect(v)

    def content_type(self, url: str) -> str | None:
        row = self.rows.get(url)
        if row is not None:
            return str(row["content_type"])
        path = urllib.parse.urlsplit(url).path
        return mimetypes.guess_type(path)[0]

    def text(self, url: str) -> str | None:
        """The content of a small delivered text file, else None."""
        row = self.rows.get(url)
        if row is None or row["size"] > MAX_INLINE_TEXT:
            return None
        ctype = str(row["content_type"])
        if not (ctype.startswith("text/") or ctype in ("application/json",)):
            return None
        try:
            return self.core.files.blob_path(row).read_bytes().decode("utf-8", "replace")
        except OSError:
            return None


def _is_file_like(value: Any) -> bool:
    return isinstance(value, str) and (
        _safe_url(value) is not None or _data_uri_type(value) is not None
    )


def _media(value: str, files: _Files | None) -> str:
    """Inline media (image, audio, video, text) for a URL or ``data:`` URI, with a link."""
    data_type = _data_uri_type(value)
    url = _safe_url(value)
    if data_type is None and url is None:
        return f"<pre>{e(value)}</pre>"
    ctype = data_type or (files.content_type(value) if files else None) or ""
    src = e(value)
    name = (
        "data: URI"
        if data_type
        else urllib.parse.unquote(urllib.parse.urlsplit(value).path.rsplit("/", 1)[-1]) or value
    )
    if ctype.startswith("image/"):
        inner = f'<img src="{src}" alt="{e(name)}">'
    elif ctype.startswith("audio/"):
        inner = f'<audio controls preload="metadata" src="{src}"></audio>'
    elif ctype.startswith("video/"):
        inner = f'<video controls preload="metadata" src="{src}"></video>'
    else:
        text = files.text(value) if files else None
        inner = f"<pre>{e(text)}</pre>" if text is not None else ""
    link = (
        f'<a href="{src}" target="_blank" rel="noopener noreferrer">{e(name)}</a>'
        if url
        else e(name)
    )
    cap = f"{link}" + (f" &middot; {e(ctype)}" if ctype else "")
    return f'<div class="media">{inner}<div class="cap">{cap}</div></div>'


def _concatenate(schema: dict[str, Any] | None) -> bool:
    out = ((schema or {}).get("components", {}).get("schemas", {}) or {}).get("Output") or {}
    return out.get("x-cog-array-display") == "concatenate"


def render_output(value: Any, files: _Files | None, *, concatenate: bool = False) -> str:
    """HTML for an output value: media for files, ``<pre>`` for text, pretty JSON otherwise."""
    if value is None:
        return '<p class="note">No output.</p>'
    if isinstance(value, str):
        return _media(value, files) if _is_file_like(value) else f"<pre>{e(value)}</pre>"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if value and all(_is_file_like(v) for v in value):
            return "".join(_media(v, files) for v in value)
        if concatenate:
            return f"<pre>{e(''.join(value))}</pre>"
    gallery = []

    def walk(v: Any) -> None:
        if isinstance(v, str) and _is_file_like(v):
            gallery.append(_media(v, files))
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    return f"<pre>{e(_json_text(value))}</pre>" + "".join(gallery)


def _input_value(value: Any) -> str:
    if isinstance(value, str):
        if _data_uri_type(value) and len(value) > 200:
            kind = _data_uri_type(value) or ""
            if kind.startswith("image/") and len(value) <= 2_000_000:
                return _media(value, None)
            return f"<pre>{e(value[:120])}… ({len(value)} characters)</pre>"
        if _safe_url(value):
            return f'<a href="{e(value)}" rel="noopener noreferrer">{e(value)}</a>'
        if len(value) > MAX_INPUT_CHARS:
            return f"<pre>{e(value[:MAX_INPUT_CHARS])}… ({len(value)} characters)</pre>"
        return f"<pre>{e(value)}</pre>"
    return f"<pre>{e(_json_text(value))}</pre>"


def _input_table(inp: Any) -> str:
    if not isinstance(inp, dict) or not inp:
        return '<p class="note">No input.</p>'
    rows = "".join(f"<tr><th>{e(k)}</th><td>{_input_value(v)}</td></tr>" for k, v in inp.items())
    return f'<table class="input">{rows}</table>'


# ---------------------------------------------------------------------------- prediction page


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
    owner, _, name = model.partition("/")
    model_link = (
        f'<a href="/web/{e(urllib.parse.quote(owner))}/{e(urllib.parse.quote(name))}">{e(model)}</a>'
        if owner and name
        else e(model)
    )
    meta = [
        f'<span>Status: <b id="status" class="status {e(status)}">{e(status)}</b></span>',
        f"<span>Model: {model_link}</span>",
    ]
    if row.get("version"):
        meta.append(f"<span>Version: <code>{e(str(row['version'])[:12])}</code></span>")
    if row.get("deployment"):
        meta.append(f"<span>Deployment: {e(row['deployment'])}</span>")
    parts.append(f'<p class="meta">{"".join(meta)}</p>')
    times = [f"<span>Created {_when(row['created_at'])}</span>"]
    if row.get("started_at") is not None:
        times.append(f"<span>Started {_when(row['started_at'])}</span>")
    if row.get("completed_at") is not None:
        times.append(f"<span>Completed {_when(row['completed_at'])}</span>")
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
    files = _Files(core, origin)
    files.collect(row.get("output"))
    output = core.files.render(row.get("output"), origin)
    concat = _concatenate(version["openapi_schema"] if version else None)
    if status in TERMINAL or output is not None:
        parts.append(
            f'<h2>Output</h2><div id="output">{render_output(output, files, concatenate=concat)}</div>'
        )
    else:
        parts.append('<h2>Output</h2><div id="output"><p class="note">Not ready yet.</p></div>')
    parts.append(f"<h2>Input</h2>{_input_table(row.get('input'))}")
    logs = str(row.get("logs") or "")
    parts.append(f'<h2>Logs</h2><pre class="logs" id="logs">{e(logs)}</pre>')
    live = status not in TERMINAL
    if live:
        parts.append(
            f'<p class="note" id="live" data-since="{len(logs)}">Live: this page updates while '
            "the prediction runs.</p>"
        )
    api = f"{origin}/v1/{'trainings' if kind == 'Training' else 'predictions'}/{pid}"
    parts.append(f'<h2>API</h2><p class="meta"><code>GET {e(api)}</code> (needs an API token)</p>')
    script = _LIVE_JS % {"poll": POLL_MS} if live else ""
    return _document(f"{kind} {pid} ({status})", "".join(parts), nonce=nonce, script=script)


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
            return JSONResponse({"detail": "Not found", "status": 404}, 404, _headers())
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            since = -1
        return JSONResponse(prediction_json(row, since), headers=_headers())
    if row is None:
        return not_found_page(f"Prediction {pid}")
    nonce = None if row["status"] in TERMINAL else secrets.token_urlsafe(16)
    return HTMLResponse(render_prediction(core, row, origin, nonce=nonce), headers=_headers(nonce))


# ---------------------------------------------------------------------------- model page


def _schema_type(prop: dict[str, Any], schemas: dict[str, Any]) -> tuple[str, list[Any] | None]:
    """A short type label and enum choices of an input property (resolving ``allOf`` refs)."""
    enum = prop.get("enum")
    typ = prop.get("type")
    for sub in prop.get("allOf") or []:
        ref = sub.get("$ref", "") if isinstance(sub, dict) else ""
        target = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else sub
        if isinstance(target, dict):
            enum = enum or target.get("enum")
            typ = typ or target.get("type")
    if typ == "array":
        items = prop.get("items") or {}
        item = "file" if items.get("format") == "uri" else items.get("type", "any")
        label = f"array of {item}"
    elif prop.get("format") == "uri":
        label = "file"
    else:
        label = str(typ or "any")
    return label, enum


def _input_schema_table(doc: dict[str, Any]) -> str:
    schemas = (doc.get("components") or {}).get("schemas") or {}
    inp = schemas.get("Input") or {}
    props: dict[str, Any] = inp.get("properties") or {}
    if not props:
        return '<p class="note">This model takes no input.</p>'
    required = set(inp.get("required") or [])
    order = sorted(props, key=lambda k: (props[k].get("x-order", 1 << 30), k))
    rows = []
    for name in order:
        prop = props[name] if isinstance(props[name], dict) else {}
        label, enum = _schema_type(prop, schemas)
        notes = []
        if enum:
            notes.append("one of " + ", ".join(e(json.dumps(x)) for x in enum))
        for key, word in (("minimum", "min"), ("maximum", "max"), ("minLength", "min length")):
            if key in prop:
                notes.append(f"{word} {e(prop[key])}")
        default = e(json.dumps(prop["default"])) if "default" in prop else ""
        rows.append(
            f"<tr><td><code>{e(name)}</code>{' <b>*</b>' if name in required else ''}</td>"
            f"<td>{e(label)}</td><td><code>{default}</code></td>"
            f"<td>{e(prop.get('description') or '')}"
            f"{'<br><span class=meta>' + '; '.join(notes) + '</span>' if notes else ''}</td></tr>"
        )
    head = "<tr><th>Name</th><th>Type</th><th>Default</th><th>Description</th></tr>"
    return f'<table class="schema">{head}{"".join(rows)}</table><p class="meta">* required</p>'


def _output_label(doc: dict[str, Any]) -> str:
    out = ((doc.get("components") or {}).get("schemas") or {}).get("Output") or {}
    label, _ = _schema_type(out, {})
    if out.get("x-cog-array-type") == "iterator":
        label = "iterator" + (" (concatenated text)" if _concatenate(doc) else "")
    return label


def _prediction_list(core: Core, rows: list[dict[str, Any]], origin: str) -> str:
    items = []
    for r in rows:
        out = core.files.render(r.get("output"), origin)
        preview = ""
        if isinstance(out, str) and _safe_url(out):
            files = _Files(core, origin)
            files.collect(r.get("output"))
            if (files.content_type(out) or "").startswith("image/"):
                preview = f'<div class="media"><img src="{e(out)}" alt="output" height="64"></div>'
        inp = _json_text(r.get("input") or {})
        if len(inp) > 300:
            inp = inp[:300] + "…"
        items.append(
            f'<tr><td><a href="/web/p/{e(r["id"])}">{e(r["id"])}</a><br>'
            f'<span class="status {e(r["status"])}">{e(r["status"])}</span></td>'
            f"<td><pre>{e(inp)}</pre>{preview}</td><td class=meta>{_when(r['created_at'])}</td></tr>"
        )
    return f"<table>{''.join(items)}</table>"


def render_model(core: Core, m: dict[str, Any], origin: str) -> str:
    """The HTML page of a model row."""
    owner, name = str(m["owner"]), str(m["name"])
    ref = f"{owner}/{name}"
    parts = [f"<h1>{e(ref)}</h1>"]
    if m.get("description"):
        parts.append(f'<p id="description">{e(m["description"])}</p>')
    meta = [f"<span>{e(m.get('visibility') or 'public')}</span>"]
    if m.get("is_official"):
        meta.append("<span>official</span>")
    try:
        tags = json.loads(m.get("tags") or "[]")
    except ValueError:
        tags = []
    if tags:
        meta.append(f"<span>Tags: {e(', '.join(str(t) for t in tags))}</span>")
    count = core.store.one(
        "SELECT COUNT(*) AS n FROM predictions WHERE model = ? AND is_example = 0", (ref,)
    )
    meta.append(f"<span>{count['n'] if count else 0} runs</span>")
    for key, label in (
        ("github_url", "GitHub"),
        ("paper_url", "Paper"),
        ("license_url", "License"),
        ("weights_url", "Weights"),
    ):
        url = _safe_url(m.get(key))
        if url:
            meta.append(f'<span><a href="{e(url)}" rel="noopener noreferrer">{label}</a></span>')
    parts.append(f'<p class="meta">{"".join(meta)}</p>')
    cover = _safe_url(m.get("cover_image_url"))
    if cover:
        parts.append(f'<div class="media"><img src="{e(cover)}" alt="cover" height="160"></div>')
    versions = core.registry.list_versions(owner, name)
    if versions:
        latest = versions[0]
        doc = latest["openapi_schema"] or {}
        parts.append(
            f'<h2>Latest version</h2><p class="meta"><span><code id="latest-version">'
            f"{e(latest['id'])}</code></span><span>{_when(latest['created_at'])}</span>"
            + (f"<span>Cog {e(latest['cog_version'])}</span>" if latest.get("cog_version") else "")
            + f"<span>{len(versions)} version{'s' if len(versions) != 1 else ''}</span></p>"
        )
        parts.append(f"<h2>Input</h2>{_input_schema_table(doc)}")
        parts.append(f"<h2>Output</h2><p><code>{e(_output_label(doc))}</code></p>")
        example = core.store.query_predictions(
            "model = ? AND is_example = 1", (ref,), "created_at DESC", 1
        )
        sample = repr(example[0]["input"]) if example and example[0].get("input") else "{...}"
        parts.append(
            "<h2>Run it</h2><pre>import replicate\n\n"
            f"output = replicate.run({e(json.dumps(ref))}, input={e(sample)})</pre>"
        )
    else:
        parts.append('<h2>Latest version</h2><p class="note">No versions yet.</p>')
    examples = core.store.query_predictions(
        "model = ? AND is_example = 1", (ref,), "created_at DESC", MODEL_PAGE_PREDICTIONS
    )
    if examples:
        parts.append(f"<h2>Examples</h2>{_prediction_list(core, examples, origin)}")
    if core.config.tokens is None:
        # Without configured tokens any bearer token can list predictions through the API, so
        # listing them here reveals nothing new; with tokens, prediction ids stay private.
        recent = core.store.query_predictions(
            "model = ? AND is_example = 0 AND kind = 'prediction'",
            (ref,),
            "created_at DESC, id DESC",
            MODEL_PAGE_PREDICTIONS,
        )
        if recent:
            parts.append(f"<h2>Recent predictions</h2>{_prediction_list(core, recent, origin)}")
    if m.get("readme"):
        parts.append(f'<h2>README</h2><pre id="readme">{e(m["readme"])}</pre>')
    return _document(ref, "".join(parts))


def model_page(core: Core, request: Request, origin: str) -> Response:
    """``GET /web/{owner}/{name}``: the model page.

    Private models are shown only when the server accepts any token (then the API shows them to
    anyone anyway); with configured tokens they get the 404 page like unknown models.
    """
    owner, name = request.path_params["owner"], request.path_params["name"]
    m = core.registry.get_model(owner, name)
    if m is None or (m["visibility"] != "public" and core.config.tokens is not None):
        return not_found_page(f"Model {owner}/{name}")
    return HTMLResponse(render_model(core, m, origin), headers=_headers())
