"""The input gate: what every request may bring in, checked in one place.

Everything a client sends passes through here before a handler acts on it:

- **Bodies** (:func:`refuse_declared`, :func:`counted`, applied to every request by
  ``front.Front``): at most ``ServerConfig.max_body_size`` bytes (default
  :data:`DEFAULT_MAX_BODY`); ``POST /v1/files`` has the upload limit instead
  (``max_upload_size`` plus :data:`MULTIPART_OVERHEAD`). A ``Content-Length`` over the limit
  is refused before the body is read; a body without one is counted while it streams.
  Either way the answer is 413 problem+json, after the rest of the body (up to
  :data:`DRAIN_LIMIT`) has been read and discarded so the client sees it.
- **JSON** (:func:`parse_json`): UTF-8 only, no ``NaN``/``Infinity`` (nor numbers that
  overflow to them, such as ``1e400``), no lone UTF-16 surrogates in keys or values
  (escaped ``"\\ud800"`` included), at most :data:`MAX_JSON_DEPTH` nested arrays/objects.
  Anything else is 400 problem+json. What passes can always be stored and served back as
  strict JSON (:func:`strict_dumps`).
- **Numbers in headers, queries and control bodies** (:func:`number`, :func:`duration`):
  finite and within the range the caller states, else ``ValueError`` with a message naming
  the field, which the caller turns into a 4xx.

The gate also offers :func:`sanitize`, for rendering rows stored before these rules held.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from .errors import ApiError

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

MiB = 1024 * 1024
#: Largest request body (bytes) of every route but uploads, unless configured otherwise.
DEFAULT_MAX_BODY = 8 * MiB
#: Room for the multipart framing and form fields around an upload's content.
MULTIPART_OVERHEAD = 1 * MiB
#: How much of an oversized body is read (and discarded) so the client gets to read the 413;
#: beyond it the connection is closed.
DRAIN_LIMIT = 64 * MiB
#: Deepest nesting of arrays and objects in a JSON body.
MAX_JSON_DEPTH = 64

DAY = 86400.0
YEAR = 365.25 * DAY
#: Longest ``Cancel-After`` (and ``--max-run-time``): a year.
MAX_DEADLINE = 365 * DAY
#: Furthest the virtual clock may run ahead of the wall clock (``/_local/clock``): timestamps
#: stay renderable as RFC 3339 with room for deadlines and expiries on top.
MAX_CLOCK_OFFSET = 1000 * YEAR
#: Longest retention, file expiry and signed-URL lifetime.
MAX_PERIOD = 100 * YEAR
#: Largest SSE sequence number a ``Last-Event-ID`` may carry (SQLite's INTEGER range).
MAX_EVENT_SEQ = (1 << 63) - 1

_NOT_JSON = "Request body is not valid JSON"
_SURROGATE = re.compile("[\ud800-\udfff]")
# A ``\uD800``-``\uDFFF`` escape in the raw text: the only way a lone surrogate can get into
# a body that decodes as UTF-8 (may match an escaped backslash too; then strings are checked).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BodyTooLarge(ApiError):
    """413: the request body is over the route's limit."""

    def __init__(self, limit: int, detail: str | None = None) -> None:
        super().__init__(
            413,
            detail or f"Request body is too large (limit {limit} bytes)",
            title="Content Too Large",
        )
        self.limit = limit


def invalid_json(reason: str | None = None) -> ApiError:
    """400 ``Request body is not valid JSON`` (with the reason, when there is one)."""
    return ApiError(400, f"{_NOT_JSON}: {reason}" if reason else _NOT_JSON)


# ---------------------------------------------------------------------------- JSON


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_finite_float)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_PLAIN = json.JSONEncoder()  # json.dumps's


def _c_encoder(encoder: json.JSONEncoder) -> Any:
    """The C encoder ``encoder.encode`` makes anew at each call, made once (None without
    the C accelerator); without a circular reference check: a cycle ends in RecursionError,
    which its callers handle."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None or not encoder.ensure_ascii:
        return None
    return make(
        None,
        encoder.default,
        json.encoder.encode_basestring_ascii,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )


_C_ENCODE = _c_encoder(_ENCODER)
_C_TEXT = _c_encoder(_PLAIN)


def _encode(value: Any) -> str:
    """``_ENCODER.encode(value)``."""
    if _C_ENCODE is None or value.__class__ is str:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def json_text(value: Any) -> str:
    """``json.dumps(value)``, with the C encoder made once rather than per call."""
    if _C_TEXT is None or value.__class__ is str:
        return json.dumps(value)
    try:
        return "".join(_C_TEXT(value, 0))
    except RecursionError:  # a cycle (no check on the way): json.dumps says so
        return json.dumps(value)


def _decode(text: str) -> Any:
    """``_DECODER.decode(text)``: a document without surrounding whitespace is scanned
    directly; anything else (and any error, so that its message is the same) goes the
    decoder's way."""
    try:
        value, end = _DECODER.scan_once(text, 0)  # type: ignore[attr-defined]
        if end == len(text):
            return value
    except (ValueError, StopIteration, RecursionError):
        pass
    return _DECODER.decode(text)


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH, empty: Any = None) -> Any:
    """Parse a request body as strict JSON; raises 400 ``ApiError`` on anything else.

    ``empty`` is the value of an empty body.
    """
    if not raw.strip():
        return empty
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_json("it is not UTF-8") from exc
    try:
        value = _decode(text)
    except RecursionError as exc:
        raise invalid_json(f"nested deeper than {max_depth} levels") from exc
    except ValueError as exc:
        msg = str(exc)
        if "JSON number" in msg or "out of range" in msg:
            raise invalid_json(msg.split(":")[0]) from exc
        raise invalid_json() from exc
    strings = bool(_SURROGATE_ESCAPE.search(raw))
    # Fewer brackets than the depth limit cannot nest too deep: then only strings need a look.
    if strings or raw.count(b"[") + raw.count(b"{") >= max_depth:
        check_value(value, max_depth=max_depth, strings=strings)
    return value


def check_value(value: Any, *, max_depth: int = MAX_JSON_DEPTH, strings: bool = True) -> None:
    """Raise 400 if a parsed value nests too deep or (``strings``) holds a lone surrogate."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if strings and _SURROGATE.search(v):
                raise invalid_json("a string holds a lone UTF-16 surrogate")
            continue
        if not isinstance(v, (dict, list)):
            continue
        if depth >= max_depth:
            raise invalid_json(f"nested deeper than {max_depth} levels")
        if isinstance(v, dict):
            for k, x in v.items():
                if strings and _SURROGATE.search(k):
                    raise invalid_json("a key holds a lone UTF-16 surrogate")
                if isinstance(x, (str, dict, list)):
                    stack.append((x, depth + 1))
        else:
            stack.extend((x, depth + 1) for x in v if isinstance(x, (str, dict, list)))


def strict_dumps(value: Any) -> str:
    """Compact JSON that any strict parser accepts; values that are not (``NaN``, lone
    surrogates, from rows stored before the gate) are replaced as :func:`sanitize` does."""
    try:
        text = _encode(value)
    except (ValueError, RecursionError):
        return json.dumps(sanitize(value), separators=(",", ":"), allow_nan=False)
    if "\\ud" in text or "\\uD" in text:  # maybe a lone surrogate: check the hard way
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):
            return json.dumps(sanitize(value), separators=(",", ":"), allow_nan=False)
    return text


def sanitize(value: Any, *, max_depth: int = MAX_JSON_DEPTH * 4) -> Any:
    """A copy of ``value`` that strict JSON can hold: non-finite numbers become ``None``,
    lone surrogates U+FFFD, containers nested deeper than ``max_depth`` ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, (dict, list, tuple)):
        if max_depth <= 0:
            return None
        if isinstance(value, dict):
            return {
                sanitize(str(k)): sanitize(v, max_depth=max_depth - 1) for k, v in value.items()
            }
        return [sanitize(v, max_depth=max_depth - 1) for v in value]
    return value


# ---------------------------------------------------------------------------- numbers


def number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
) -> Any:
    """``value`` as a finite number (an ``int`` when ``integer``) in ``[minimum, maximum]``.

    Accepts numbers and numeric strings; raises ``ValueError`` naming ``name`` otherwise.
    """
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    parsed: float | int
    try:
        if integer:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                parsed = int(value)
            else:
                parsed = int(value.strip() if isinstance(value, str) else value)
        else:
            parsed = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be {kind}, got {_short(value)}") from exc
    if not integer and not math.isfinite(parsed):
        raise ValueError(f"{name} must be a finite number, got {_short(value)}")
    _check_range(parsed, name, minimum, maximum, value)
    return parsed


def duration(
    value: Any, name: str, *, minimum: float = 0.0, maximum: float, unit: str = "s"
) -> float:
    """Seconds from a duration (``30s``, ``5m``, ``1h30m``, a bare number of seconds) or a
    JSON number: finite and in ``[minimum, maximum]``, else ``ValueError`` naming ``name``."""
    from .util import parse_duration

    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{name} must be a duration such as 30s, 5m or 1h, got {_short(value)}")
    try:
        seconds = parse_duration(value) if isinstance(value, str) else float(value)
    except (ValueError, OverflowError) as exc:
        raise ValueError(
            f"{name} must be a duration such as 30s, 5m or 1h, got {_short(value)}"
        ) from exc
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite duration, got {_short(value)}")
    _check_range(seconds, name, minimum, maximum, value)
    return seconds


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


def size(value: str | int, name: str = "size", *, minimum: int = 0, maximum: int = 1 << 40) -> int:
    """Bytes from ``1048576``, ``512KiB``, ``8MiB``, ``10MB`` or ``1G`` (``KiB`` = 1024 bytes,
    ``KB``/``K`` = 1000), in ``[minimum, maximum]``; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a size in bytes, got {value!r}")
    if isinstance(value, int):
        parsed = value
    else:
        m = _SIZE_RE.match(str(value))
        if not m:
            raise ValueError(f"{name} must be a size such as 8MiB or 1048576, got {_short(value)}")
        unit = (m.group(2) or "").lower()
        base = 1024 if unit.endswith("ib") else 1000
        prefix = unit[:1] if unit[:1] in "kmgt" else ""
        parsed = int(m.group(1)) * (base ** "_kmgt".index(prefix) if prefix else 1)
    _check_range(parsed, name, minimum, maximum, value)
    return parsed


def _check_range(
    parsed: float, name: str, minimum: float | None, maximum: float | None, raw: Any
) -> None:
    if minimum is not None and parsed < minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, got {_short(raw)}")
    if maximum is not None and parsed > maximum:
        raise ValueError(f"{name} must be at most {maximum:g}, got {_short(raw)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------- body size


def counted(receive: Receive, limit: int, detail: str | None) -> Receive:
    """``receive`` counting the body as it streams: over ``limit`` bytes it raises the 413
    (:class:`BodyTooLarge`) once the rest of the body is drained, or :class:`Abandon` when the
    body goes on past :data:`DRAIN_LIMIT`."""
    received = 0

    async def counting() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                drained = not message.get("more_body", False) or await _drain(receive, DRAIN_LIMIT)
                if not drained:
                    raise Abandon(BodyTooLarge(limit, detail))
                raise BodyTooLarge(limit, detail)
        return message

    return counting


async def refuse_declared(
    scope: Scope, receive: Receive, send: Send, length: int, limit: int, detail: str | None
) -> None:
    """Answer 413 to a request whose ``Content-Length`` (``length``) is over ``limit``.

    The body is drained first (so the client gets to read the answer) unless it is over
    :data:`DRAIN_LIMIT` or the client waits for ``100 Continue``; then the connection closes.
    """
    closing = length > DRAIN_LIMIT or _expects_continue(scope)
    if not closing:
        closing = not await _drain(receive, DRAIN_LIMIT)
    response = BodyTooLarge(limit, detail).response()
    if closing:
        response.headers["Connection"] = "close"
    await response(scope, receive, send)


class Abandon(Exception):
    """The body went on past the drain limit: answer 413 and close."""

    def __init__(self, error: BodyTooLarge) -> None:
        super().__init__(error.detail)
        self.error = error


def _expects_continue(scope: Scope) -> bool:
    return any(k == b"expect" and v.lower() == b"100-continue" for k, v in scope.get("headers", ()))


async def _drain(receive: Receive, budget: int) -> bool:
    """Read and discard the rest of a body; False when it goes on past ``budget`` bytes."""
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
        if seen > budget:
            return False
