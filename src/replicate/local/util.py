"""Small shared helpers for the local server: clock, ids, timestamps, durations, headers."""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_BYTES = bytes(ord(_ID_ALPHABET[b % 36]) for b in range(256))
_ID_LOCK = threading.Lock()
_id_pool: list[str] = []


class Clock:
    """Wall clock with an adjustable offset, so tests can move time forward instantly."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current (virtual) time as Unix seconds, rounded to whole microseconds."""
        # One read of a float: no lock needed. floor(x + 0.5) rounds as round(x, 6) does but
        # for exact halves, at a fifth of its cost (round(x, 6) formats the float).
        return math.floor((time.time() + self._offset) * 1e6 + 0.5) / 1e6

    def advance(self, seconds: float, max_offset: float = 1000 * 365.25 * 86400) -> None:
        """Move the virtual clock forward by ``seconds`` (finite, >= 0); ValueError if that
        would put it more than ``max_offset`` seconds ahead of the wall clock."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        with self._lock:
            if self._offset + seconds > max_offset:
                raise ValueError(
                    f"the clock may run at most {max_offset:g} s ahead of the wall clock"
                )
            self._offset += seconds

    @property
    def offset(self) -> float:
        """Seconds the virtual clock runs ahead of the wall clock."""
        return self._offset


def header(scope: Any, name: bytes) -> str | None:
    """The first value of the request header ``name`` (lower-case, as ASGI gives names), as
    Starlette's ``request.headers.get`` gives it, without building the headers mapping."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def new_id() -> str:
    """A 26-character id from ``[a-z0-9]``, shaped like real prediction ids."""
    # The system's random source read for 64 ids at a time (a read costs a system call), a
    # byte per character mapped in C: each character carries log2(36) bits less a trace of
    # modulo bias (256 = 7 * 36 + 4), about 134 bits in all.
    with _ID_LOCK:
        global _id_pool
        if not _id_pool:
            raw = secrets.token_bytes(26 * 64).translate(_ID_BYTES).decode("ascii")
            _id_pool = [raw[i : i + 26] for i in range(0, len(raw), 26)]
        return _id_pool.pop()


def iso(ts: float | None) -> str | None:
    """RFC 3339 UTC timestamp with microseconds and ``Z``, or ``None``.

    ``None`` too for a time no date can show (NaN, beyond year 9999): such values only come
    from rows stored before the input gate bounded them, and must not break their rendering.
    """
    if ts is None:
        return None
    # Whole seconds are formatted once (datetime is slow); the microseconds are rounded as
    # ``datetime.fromtimestamp`` rounds them (half to even).
    try:
        frac, whole = math.modf(ts)
        us = round(frac * 1e6)
        second = int(whole)
    except (OverflowError, ValueError):  # NaN, infinities
        return None
    if us >= 1_000_000:
        second, us = second + 1, us - 1_000_000
    elif us < 0:
        second, us = second - 1, us + 1_000_000
    prefix = _ISO_SECONDS.get(second)
    if prefix is None:
        try:
            dt = datetime.fromtimestamp(second, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
        if len(_ISO_SECONDS) >= _ISO_SECONDS_KEPT:
            _ISO_SECONDS.clear()
        prefix = _ISO_SECONDS[second] = dt.strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{prefix}{us:06d}Z"


#: Formatted whole seconds of :func:`iso` (timestamps come in runs of the same second).
_ISO_SECONDS: dict[int, str] = {}
_ISO_SECONDS_KEPT = 4096


def parse_iso(value: str) -> float:
    """Parse an ISO 8601 date-time (``Z`` or offset; a bare date is midnight UTC)."""
    v = value.strip()
    if v.endswith("Z") or v.endswith("z"):
        v = v[:-1] + "+00:00"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        v += "T00:00:00+00:00"
    # Python < 3.11 accepts at most 6 fractional digits.
    m = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", v)
    if m:
        v = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value: str) -> float:
    """Parse ``30s``, ``5m``, ``1h``, ``1h30m45s`` or a bare number of seconds.

    Raises ValueError on anything else, ``nan`` and ``inf`` included (ranges are the
    caller's: see ``gate.duration``).
    """
    v = value.strip().lower()
    if not v:
        raise ValueError("empty duration")
    try:
        seconds = float(v)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"invalid duration: {value!r}")
        return seconds
    m = _DURATION_RE.match(v)
    if not m or not any(m.groups()):
        raise ValueError(f"invalid duration: {value!r}")
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    import ipaddress

    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


REMOTE_CONTROLS_REFUSED = (
    "refusing to serve the /_local test controls on the non-loopback address {host} "
    "(anyone who reaches it could reset or script the server); bind 127.0.0.1, or pass "
    "--allow-remote-controls (allow_remote_controls=True) if you really mean it"
)
