"""Shared pieces of the HTTP layer: JSON replies, pagination, and the route base class."""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    Response,
)

from .auth import authenticate
from .controls import Faults, RequestLog
from .core import Core
from .errors import ApiError
from .fetch import OwnAddress, targets_controls
from .gate import number, parse_json, strict_dumps

INVALID_VERSION_TITLE = "Invalid version or not permitted"
#: Distinct request origins (scheme, server, root path, Host) remembered by ``origin``.
_ORIGINS_KEPT = 64

# The spec's pattern: it admits wait=1..99; waits beyond 60 s are clamped to 60.
_PREFER_WAIT = re.compile(r"^wait(=([1-9]|[1-9][0-9]|60))?$")
_WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
_JSON_UTF8 = "application/json; charset=UTF-8"


def _dumps(value: Any) -> str:
    return strict_dumps(value)


def _is_http_url(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and value.isprintable()
        and " " not in value
    )


class JsonResponse(Response):
    """A response whose body is already-encoded JSON, its headers made as ``Response`` makes
    them (the given ones, lower-cased, then length and type) without its per-instance work."""

    media_type = "application/json"

    def __init__(
        self, body: bytes, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        raw = (
            [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            if headers
            else []
        )
        raw.append((b"content-length", str(len(body)).encode()))
        raw.append((b"content-type", b"application/json"))
        self.raw_headers = raw


def json_response(
    value: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    """Compact JSON response; always strict JSON (see ``gate.strict_dumps``)."""
    if (
        media_type == "application/json"
        and status >= 200
        and status not in (204, 304)
        and not (headers and _SET_BY_RESPONSE.intersection(k.lower() for k in headers))
    ):
        return JsonResponse(_dumps(value).encode(), status, headers)
    return Response(_dumps(value), status_code=status, headers=headers, media_type=media_type)


_SET_BY_RESPONSE = frozenset(("content-length", "content-type"))


def _json_type(v: Any) -> str:
    from .schema import _json_type as jt

    return jt(v)


def webhook_fields(
    body: dict[str, Any], own: OwnAddress | None = None
) -> tuple[Any, Any, list[str]]:
    """``(webhook, webhook_events_filter, problems)`` of a create body (predictions, trainings).

    The legacy ``webhook_completed`` stands for ``webhook`` with completed events only;
    ``problems`` are ``input_validation`` lines for a bad URL or events filter, or a URL
    that targets this server's ``/_local`` controls (``own``: the server's addresses).
    """
    webhook = body.get("webhook")
    events = body.get("webhook_events_filter")
    if webhook is None and events is None and "webhook_completed" not in body:
        return None, None, []
    if webhook is None and body.get("webhook_completed") is not None:
        webhook, events = body["webhook_completed"], ["completed"]
    lines: list[str] = []
    if webhook is not None:
        try:
            parts = urllib.parse.urlsplit(webhook) if isinstance(webhook, str) else None
        except ValueError:  # e.g. "http://[" (an unclosed IPv6 literal)
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            lines.append("- webhook: must be an absolute http(s) URL")
        elif own is not None and targets_controls(webhook, own):
            lines.append("- webhook: must not point at this server's /_local test controls")
    if events is not None:
        if not isinstance(events, list):
            lines.append(
                f"- webhook_events_filter: Invalid type. Expected: array, given: {_json_type(events)}"
            )
        else:
            choices = ", ".join(f'"{e}"' for e in _WEBHOOK_EVENTS)
            for i, ev in enumerate(events):
                if ev not in _WEBHOOK_EVENTS:
                    lines.append(
                        f"- webhook_events_filter.{i}: webhook_events_filter.{i} must be one of the following: {choices}"
                    )
    return webhook, events, lines


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
    position = _keyset_position(request)
    if position:
        anchor, direction = position
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
    return page, *_keyset_links(request, origin, page, has_before, has_after)


def _keyset_position(request: Request) -> tuple[tuple[float, str], str] | None:
    """``((created_at, id), direction)`` of the request's keyset cursor, None without one."""
    cursor = request.query_params.get("cursor")
    if not cursor:
        return None
    c = _decode_cursor(cursor)
    try:
        position = number(c["p"], "p"), c["i"]
    except (KeyError, ValueError) as exc:
        raise ApiError(400, "Invalid cursor") from exc
    return position, c.get("d", "n")


def _keyset_links(
    request: Request, origin: str, page: list[dict[str, Any]], has_before: bool, has_after: bool
) -> tuple[str | None, str | None]:
    """The ``next`` and ``previous`` URLs of a keyset page (None where there is none)."""

    def link(row: dict[str, Any], direction: str) -> str:
        cursor = {"p": repr(row["created_at"]), "i": row["id"], "d": direction}
        return _page_url(request, origin, _encode_cursor(cursor))

    nxt = link(page[-1], "n") if page and has_after else None
    prev = link(page[0], "p") if page and has_before else None
    return nxt, prev


def sql_keyset_page(
    request: Request,
    origin: str,
    fetch: Callable[[str, list[Any], str, int], list[dict[str, Any]]],
    page_size: int,
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """Like ``keyset_page``, but lets the database do the work.

    ``fetch(condition, params, order, limit)`` returns rows matching the caller's filters plus
    ``condition`` (over ``created_at``/``id``), in ``order``, at most ``limit`` of them.
    """
    position = _keyset_position(request)
    if position:
        anchor, direction = position
        if direction == "p":
            rows = fetch(
                "(created_at, id) > (?, ?)", list(anchor), "created_at ASC, id ASC", page_size + 1
            )
            has_before = len(rows) > page_size
            page = list(reversed(rows[:page_size]))
            has_after = True
        else:
            rows = fetch(
                "(created_at, id) < (?, ?)", list(anchor), "created_at DESC, id DESC", page_size + 1
            )
            has_after = len(rows) > page_size
            page = rows[:page_size]
            has_before = True
    else:
        rows = fetch("1", [], "created_at DESC, id DESC", page_size + 1)
        has_after = len(rows) > page_size
        page = rows[:page_size]
        has_before = False
    return page, *_keyset_links(request, origin, page, has_before, has_after)


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


async def read_body(request: Request) -> bytes:
    """``await request.body()``, read straight from the ASGI messages (Starlette's way goes
    through an async generator per request), and kept where Starlette keeps it."""
    if hasattr(request, "_body") or request._stream_consumed:
        return await request.body()
    chunks: list[bytes] = []
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    request._stream_consumed = True
    body = request._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return body


class BaseRoutes:
    """State and helpers shared by the route mixins."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.faults = Faults()
        self.requests = RequestLog()
        self._origins: dict[tuple[Any, ...], str] = {}

    # ------------------------------------------------------------------ helpers
    def origin(self, request: Request) -> str:
        """The origin used in URLs: the public URL, else the request's own."""
        if self.core.config.public_url:
            return self.core.config.public_url.rstrip("/")
        scope = request.scope
        host = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value
                break
        # Everything Starlette's base_url is made of (building it per request is costly).
        shape = (
            scope.get("scheme", "http"),
            scope.get("server"),
            scope.get("app_root_path", scope.get("root_path", "")),
            host,
        )
        origin = self._origins.get(shape)
        if origin is None:
            if len(self._origins) >= _ORIGINS_KEPT:  # Host is the client's: stay bounded
                self._origins.clear()
            origin = self._origins[shape] = str(request.base_url).rstrip("/")
        return origin

    def account(self, request: Request) -> str:
        """Authenticate; returns the username."""
        cfg = self.core.config
        return authenticate(request, cfg.tokens, cfg.username)

    async def json_body(self, request: Request, empty: Any = None) -> Any:
        """The body parsed by the input gate (strict JSON; 400 otherwise); ``empty`` stands
        for an empty body."""
        return parse_json(await read_body(request), empty=empty)

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def _visible(self, model: dict[str, Any], account: str) -> bool:
        return model["visibility"] == "public" or model["owner"] == account
