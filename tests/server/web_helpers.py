"""Helpers shared by the web page tests: an HTML tag reader, the inertness check, a PNG decoder."""

from __future__ import annotations

import html.parser
import os
import re
import struct
import zlib
from collections import Counter
from typing import Any

import httpx
import pytest

from .helpers import wait_status

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<script>alert(1)</script>"
#: Chromium flags for a quiet, offline, bounded run.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,800",
]


# ---------------------------------------------------------------------------- helpers


class Tags(html.parser.HTMLParser):
    """Every start tag with its attributes, and the text of elements by id."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.by_id: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag not in ("img", "meta", "br", "input", "link"):
            self._open.append((tag, a.get("id")))
            if a.get("id"):
                self.by_id.setdefault(a["id"], "")

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.by_id[ident] += data

    def all(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


def assert_inert(page: str, *, scripts: int = 0, csp: str | None = None) -> Tags:
    """No injected markup: only our own script tags (carrying the nonce of ``csp`` when given),
    no handlers, no javascript: URLs."""
    tags = Tags(page)
    assert len(tags.all("script")) == scripts, tags.all("script")
    if scripts and csp is not None:
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce is not None, csp
        assert all(s.get("nonce") == nonce.group(1) for s in tags.all("script"))
    for tag, attrs in tags.tags:
        for k, v in attrs.items():
            assert not k.startswith("on"), (tag, attrs)
            if k in ("href", "src"):
                assert not v.strip().lower().startswith("javascript:"), (tag, attrs)
    return tags


def run(
    http: httpx.Client, model: str, inp: dict[str, Any], *, wait: bool = True
) -> dict[str, Any]:
    headers = {"Prefer": "wait"} if wait else {}
    r = http.post(f"/v1/models/{model}/predictions", json={"input": inp}, headers=headers)
    assert r.status_code in (200, 201), r.text
    p = r.json()
    return wait_status(http, p["id"], {"succeeded", "failed", "canceled"}) if wait else p


def web(url: str, **params: Any) -> httpx.Response:
    """GET a web page without any credentials, as a browser would."""
    return httpx.get(url, params=params, timeout=30)


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, channels, rows) of an 8-bit, non-interlaced PNG (stdlib zlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
    assert ihdr is not None, "no IHDR"
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0, ihdr
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if f == 1:
            for i in range(ch, stride):
                line[i] = (line[i] + line[i - ch]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif f == 3:
            for i in range(stride):
                left = line[i - ch] if i >= ch else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - ch] if i >= ch else 0
                b = prev[i]
                c = prev[i - ch] if i >= ch else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows


def colours(png: bytes) -> tuple[int, int, Counter[bytes]]:
    """Width, height and a histogram of the RGB colours of a PNG."""
    w, h, ch, rows = decode_png(png)
    hist: Counter[bytes] = Counter()
    for row in rows:
        for i in range(0, len(row), ch):
            hist[row[i : i + 3] if ch >= 3 else row[i : i + 1] * 3] += 1
    return w, h, hist


def need_chromium() -> None:
    """Skip (with the reason) when Debian's chromium is not installed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(apt-get update && apt-get install -y chromium) to run the browser check"
        )
