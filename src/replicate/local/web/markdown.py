"""A model's README as HTML: CommonMark (plus tables and strikethrough) by markdown-it-py.

READMEs are untrusted: raw HTML in them is not passed through but shown as text, link targets are
kept only for ``http(s)``, ``mailto`` and relative URLs (no ``javascript:``, ``data:``, ...), and
image sources only for ``http(s)``, relative URLs and ``data:`` images. Links open without a
referrer. The page's CSP (no script without its nonce) backs this up.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Any

__all__ = ["render_markdown"]

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_DATA_IMAGE = re.compile(r"^data:image/(gif|png|jpeg|webp);", re.IGNORECASE)


def _allowed(url: str, *, image: bool) -> bool:
    """Whether a (normalised) link or image URL may be emitted."""
    # Browsers drop tabs and newlines inside a scheme: judge the URL as they would read it.
    text = "".join(ch for ch in urllib.parse.unquote(url) if ch.isprintable() and not ch.isspace())
    if not _SCHEME.match(text):
        return True  # relative: a path, a query or a fragment on this server
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        return True
    if image:
        return bool(_DATA_IMAGE.match(text))
    return scheme == "mailto"


def _validate(url: str) -> bool:
    """markdown-it's check of a link or image target (images may also be ``data:`` images)."""
    return _allowed(url, image=False) or bool(_DATA_IMAGE.match(url))


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = _validate  # type: ignore[method-assign]

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        href = str(token.attrGet("href") or "")
        if not _allowed(href, image=False):
            token.attrSet("href", "#")
        token.attrSet("rel", "noopener noreferrer nofollow")
        return str(renderer.renderToken(tokens, idx, options, env))

    def image(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        if not _allowed(str(token.attrGet("src") or ""), image=True):
            token.attrSet("src", "")
        return str(default_image(tokens, idx, options, env))

    default_image = md.renderer.rules["image"]  # type: ignore[attr-defined]
    md.add_render_rule("link_open", link_open)
    md.add_render_rule("image", image)
    return md


def render_markdown(text: str) -> str:
    """Safe HTML for a Markdown text (raw HTML escaped, links sanitised)."""
    return str(_parser().render(text))
