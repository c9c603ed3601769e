"""What every page shares: escaping, safe URLs, the document shell and its headers, and the
rendering of values (inputs, outputs, output files) as HTML.

Everything that comes from users or models goes through :func:`e` (``html.escape`` with quotes);
links and media sources are only emitted for ``http(s)`` URLs (and ``data:`` URIs of the matching
media type), and a strict ``Content-Security-Policy`` (scripts only with the page's nonce) backs
that up.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import json
import mimetypes
import urllib.parse
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse

from ..files import DELIVERY_PREFIX
from ..util import iso

if TYPE_CHECKING:
    from ..core import Core

#: Text output files up to this size are shown inline.
MAX_INLINE_TEXT = 64 * 1024
#: Strings longer than this are cut in input tables (``data:`` URIs, huge prompts).
MAX_INPUT_CHARS = 4000
#: Characters of text shown for an output in a list of predictions.
SUMMARY_CHARS = 200


@functools.cache
def static_text(name: str) -> str:
    """The text of a file in this package's ``static`` directory (CSS and scripts)."""
    return (importlib.resources.files(__package__) / "static" / name).read_text(encoding="utf-8")


def e(value: Any) -> str:
    """HTML-escape any value (quotes included, so the result is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def safe_url(url: Any) -> str | None:
    """``url`` if it is an absolute ``http(s)`` URL (never ``javascript:`` and friends)."""
    if not isinstance(url, str) or not url.isprintable():
        return None
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url.strip()
    return None


def data_uri_type(value: str) -> str | None:
    """The media type of a ``data:`` URI, or None when ``value`` is not one."""
    if not value.startswith("data:"):
        return None
    head = value[5:].split(",", 1)[0]
    return head.split(";", 1)[0].strip().lower() or "text/plain"


def when(ts: float | None) -> str:
    """A timestamp for people: ``2026-01-02 03:04:05 UTC`` (ISO 8601 in the attribute)."""
    if ts is None:
        return ""
    text = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{e(iso(ts))}">{e(text)}</time>'


def json_text(value: Any) -> str:
    """Pretty JSON for people (non-ASCII kept)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def items_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """The ``items`` schema of an array property (``{}`` when missing or malformed)."""
    items = prop.get("items")
    return items if isinstance(items, dict) else {}


def model_href(model: str) -> str | None:
    """The escaped path of a model's page, or None when ``model`` is not ``owner/name``."""
    owner, _, name = model.partition("/")
    if not owner or not name:
        return None
    return e(f"/web/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}")


def headers(nonce: str | None = None) -> dict[str, str]:
    """Response headers of a page: the strict CSP (scripts only with ``nonce``) and friends."""
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


def document(title: str, body: str, *, nonce: str | None = None, script: str = "") -> str:
    """A whole page: the shell with the stylesheet, a top bar linking the index, ``body``."""
    js = f'<script nonce="{e(nonce)}">{script}</script>' if nonce and script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)}</title><style>{static_text('web.css')}</style></head><body>"
        '<header class="top"><a href="/">Local Replicate server</a></header>'
        f"{body}{js}</body></html>"
    )


def not_found_page(what: str) -> HTMLResponse:
    """An HTML 404 page."""
    body = f"<h1>Not found</h1><p>{e(what)} could not be found on this server.</p>"
    return HTMLResponse(document("Not found", body), status_code=404, headers=headers())


def logs_box(text: str, ident: str = "logs") -> str:
    """A logs box that opens scrolled to its newest line and follows new lines while scrolled
    to the bottom (a reversed flex column does both without any script)."""
    return f'<div class="logbox"><pre class="logs" id="{e(ident)}">{e(text)}</pre></div>'


def table(inner: str, cls: str = "") -> str:
    """A table in a box that scrolls sideways by itself, so the page never does."""
    attr = f' class="{e(cls)}"' if cls else ""
    return f'<div class="tw"><table{attr}>{inner}</table></div>'


# ---------------------------------------------------------------------------- values and files


class Files:
    """Content types and sizes of a prediction's delivered output files, by absolute URL."""

    def __init__(self, core: Core, origin: str) -> None:
        self.core = core
        self.origin = origin
        self.rows: dict[str, dict[str, Any]] = {}

    def collect(self, value: Any) -> None:
        """Look up every delivery URL in a stored output value."""
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
        """The stored content type of a delivered file, else a guess from its name."""
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


def is_file_like(value: Any) -> bool:
    """A string that is a URL or a ``data:`` URI (shown as media or a link)."""
    return isinstance(value, str) and (
        safe_url(value) is not None or data_uri_type(value) is not None
    )


def file_name(value: str) -> str:
    """A short name for a file URL (its last path segment) or ``data: URI``."""
    if data_uri_type(value):
        return "data: URI"
    path = urllib.parse.urlsplit(value).path
    return urllib.parse.unquote(path.rsplit("/", 1)[-1]) or value


def media(value: str, files: Files | None, *, thumb: bool = False) -> str:
    """Inline media (image, audio, video, text) for a URL or ``data:`` URI, with a link.

    ``thumb`` gives the small form of a list: image thumbnails and a link for other files.
    """
    dtype = data_uri_type(value)
    url = safe_url(value)
    if dtype is None and url is None:
        return f"<pre>{e(value)}</pre>"
    ctype = dtype or (files.content_type(value) if files else None) or ""
    src = e(value)
    name = file_name(value)
    if ctype.startswith("image/"):
        inner = f'<img src="{src}" alt="{e(name)}"{" class=thumb" if thumb else ""}>'
    elif thumb:
        inner = ""
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
    cap = link + (f" &middot; {e(ctype)}" if ctype else "")
    return f'<div class="media">{inner}<div class="cap">{cap}</div></div>'


def concatenate(schema: dict[str, Any] | None) -> bool:
    """Whether a version's output is an iterator of text shown joined."""
    out = ((schema or {}).get("components", {}).get("schemas", {}) or {}).get("Output") or {}
    return out.get("x-cog-array-display") == "concatenate"


def _gallery(value: Any, files: Files | None, thumb: bool) -> list[str]:
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str) and is_file_like(v):
            found.append(media(v, files, thumb=thumb))
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    return found


def render_output(value: Any, files: Files | None, *, concat: bool = False) -> str:
    """HTML for an output value: media for files, ``<pre>`` for text, pretty JSON otherwise."""
    if value is None:
        return '<p class="note">No output.</p>'
    if isinstance(value, str):
        return media(value, files) if is_file_like(value) else f"<pre>{e(value)}</pre>"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if value and all(is_file_like(v) for v in value):
            return "".join(media(v, files) for v in value)
        if concat:
            return f"<pre>{e(''.join(value))}</pre>"
    return f"<pre>{e(json_text(value))}</pre>" + "".join(_gallery(value, files, False))


def _excerpt(text: str) -> str:
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS] + "…"


def output_summary(value: Any, files: Files | None, *, concat: bool = False) -> str:
    """The short form of an output in a list: a text excerpt, image thumbnails, file links."""
    if value is None:
        return ""
    if isinstance(value, str) and not is_file_like(value):
        return f'<pre class="excerpt">{e(_excerpt(value))}</pre>'
    if isinstance(value, list) and concat and all(isinstance(v, str) for v in value):
        return f'<pre class="excerpt">{e(_excerpt("".join(value)))}</pre>'
    shown = _gallery(value, files, True)
    if isinstance(value, (dict, list)) and not (
        isinstance(value, list) and all(is_file_like(v) for v in value)
    ):
        shown.insert(
            0, f'<pre class="excerpt">{e(_excerpt(json.dumps(value, ensure_ascii=False)))}</pre>'
        )
    return "".join(shown[:4]) + (
        f'<p class="note">and {len(shown) - 4} more</p>' if len(shown) > 4 else ""
    )


def input_value(value: Any) -> str:
    """One input value as HTML: links for URLs, image ``data:`` URIs inline, text cut."""
    if isinstance(value, str):
        kind = data_uri_type(value)
        if kind and len(value) > 200:
            if kind.startswith("image/") and len(value) <= 2_000_000:
                return media(value, None)
            return f"<pre>{e(value[:120])}… ({len(value)} characters)</pre>"
        if safe_url(value):
            return f'<a href="{e(value)}" rel="noopener noreferrer">{e(value)}</a>'
        if len(value) > MAX_INPUT_CHARS:
            return f"<pre>{e(value[:MAX_INPUT_CHARS])}… ({len(value)} characters)</pre>"
        return f"<pre>{e(value)}</pre>"
    return f"<pre>{e(json_text(value))}</pre>"


def input_table(inp: Any) -> str:
    """A prediction's input as a two-column table."""
    if not isinstance(inp, dict) or not inp:
        return '<p class="note">No input.</p>'
    rows = "".join(f"<tr><th>{e(k)}</th><td>{input_value(v)}</td></tr>" for k, v in inp.items())
    return table(rows, "input")


def input_excerpt(inp: Any) -> str:
    """A prediction's input, cut, for lists."""
    text = json.dumps(inp or {}, ensure_ascii=False, default=str)
    return f'<pre class="excerpt">{e(_excerpt(text))}</pre>'
