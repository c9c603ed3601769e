"""Pure decisions for waiting on predictions and trainings (docs/predictions.md).

No I/O and no sleeping here: terminal statuses, "is this create response complete", the poll
delay schedule, deadlines, and the ``Prefer`` / ``Cancel-After`` header values of a create.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import time
from collections.abc import Iterator, Mapping
from typing import Any

logger = logging.getLogger("replicate")

__all__ = [
    "MAX_WAIT_SECONDS",
    "NON_TERMINAL_STATUSES",
    "TERMINAL_STATUSES",
    "cancel_after_header",
    "check_timeout",
    "deadline_after",
    "is_create_complete",
    "is_sync_complete",
    "is_terminal",
    "poll_delay",
    "poll_delays",
    "preference_applied_wait",
    "prefer_header",
    "remaining",
    "sleep_time",
    "wait_read_timeout",
]

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
NON_TERMINAL_STATUSES = frozenset({"starting", "processing"})
MAX_WAIT_SECONDS = 60
MIN_CANCEL_AFTER_SECONDS = 5
WAIT_TRUE_MIN_READ = 65.0
WAIT_READ_MARGIN = 5.0
BACKOFF_AFTER_POLLS = 10
BACKOFF_FACTOR = 1.2
BACKOFF_CAP = 5.0


def is_terminal(status: Any, completed_at: Any = None) -> bool:
    """Whether a prediction/training with this ``status`` is done (docs/predictions.md, "Statuses").

    Known terminal statuses are terminal; ``starting``/``processing`` are not; an unknown status
    is terminal once ``completed_at`` is set (so a new terminal status never causes endless polls).
    """
    if status in TERMINAL_STATUSES:
        return True
    if status in NON_TERMINAL_STATUSES:
        return False
    return bool(completed_at)


def preference_applied_wait(value: str | None) -> bool:
    """Whether a ``Preference-Applied`` header value names the ``wait`` preference."""
    if not value:
        return False
    for part in value.split(","):
        token = part.split(";", 1)[0].split("=", 1)[0].strip().lower()
        if token == "wait":
            return True
    return False


def is_sync_complete(response: Any, sent_prefer: bool, status: Any = None) -> bool:
    """Whether a create response answered ``Prefer: wait`` with the final output
    (docs/predictions.md, "The sync-complete rule").

    Requires that the request carried ``Prefer``, HTTP 201, a ``Preference-Applied`` header naming
    ``wait``, and a status other than ``starting``. ``status`` defaults to the one in the JSON body.
    """
    if not sent_prefer or response.status_code != 201:
        return False
    if not preference_applied_wait(response.headers.get("preference-applied")):
        return False
    if status is None:
        try:
            body = response.json()
        except ValueError:
            return False
        status = body.get("status") if isinstance(body, Mapping) else None
    return isinstance(status, str) and status != "starting"


def is_create_complete(
    response: Any, sent_prefer: bool, status: Any, completed_at: Any = None
) -> bool:
    """Whether the prediction in a create response needs no polling: terminal or sync-complete."""
    return is_terminal(status, completed_at) or is_sync_complete(response, sent_prefer, status)


def poll_delay(n: int, poll_interval: float) -> float:
    """The delay before poll ``n`` (1-based): ``poll_interval`` for the first 10 polls, then a gentle
    backoff ``min(poll_interval * 1.2 ** (n - 10), max(poll_interval, 5.0))`` (docs/predictions.md, "Polling")."""
    if n <= BACKOFF_AFTER_POLLS:
        return poll_interval
    cap = max(poll_interval, BACKOFF_CAP)
    exponent = n - BACKOFF_AFTER_POLLS
    if exponent > 200:  # avoids float overflow; the cap has long been reached
        return cap
    return min(poll_interval * BACKOFF_FACTOR**exponent, cap)


def poll_delays(poll_interval: float) -> Iterator[float]:
    """The endless schedule of :func:`poll_delay` values for polls 1, 2, 3, ..."""
    n = 0
    while True:
        n += 1
        yield poll_delay(n, poll_interval)


def check_timeout(timeout: Any, name: str = "timeout") -> float | None:
    """Validate an overall ``timeout`` in seconds (``None`` = no deadline)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, not {timeout!r}")
    return float(timeout)


def check_poll_interval(value: Any) -> float | None:
    """Validate a per-call ``poll_interval`` (``None`` = the client's)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"poll_interval must be a number of seconds or None, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"poll_interval must be a finite number >= 0, not {value!r}")
    return float(value)


def deadline_after(timeout: float | None, now: float | None = None) -> float | None:
    """The :func:`time.monotonic` deadline ``timeout`` seconds from ``now`` (``None`` = none)."""
    if timeout is None or math.isinf(timeout):
        return None
    return (time.monotonic() if now is None else now) + timeout


def remaining(deadline: float | None, now: float | None = None) -> float | None:
    """Seconds left until ``deadline`` (never negative), or ``None`` without a deadline."""
    if deadline is None:
        return None
    return max(deadline - (time.monotonic() if now is None else now), 0.0)


def sleep_time(delay: float, deadline: float | None, now: float | None = None) -> float:
    """How long to sleep for ``delay`` without passing ``deadline``."""
    left = remaining(deadline, now)
    return delay if left is None else min(delay, left)


def prefer_header(wait: Any) -> str | None:
    """The ``Prefer`` header value for a create's ``wait`` argument, or ``None``
    (docs/predictions.md, "Creating a prediction").

    ``True`` → ``"wait"``; a number N → ``"wait=N"`` (rounded up, clamped to 60);
    ``False``/``0``/``None`` → no header; a negative number → :class:`ValueError`.
    """
    if wait is None or wait is False:
        return None
    if wait is True:
        return "wait"
    if not isinstance(wait, (int, float)):
        raise TypeError(f"wait must be a bool or a number of seconds, not {wait!r}")
    if math.isnan(wait) or wait < 0:
        raise ValueError(f"wait must be True, False or a number of seconds >= 0, not {wait!r}")
    if wait == 0:
        return None
    seconds = MAX_WAIT_SECONDS if math.isinf(wait) else math.ceil(wait)
    if seconds > MAX_WAIT_SECONDS:
        logger.debug("wait=%s is above the API maximum; using wait=%d", wait, MAX_WAIT_SECONDS)
        seconds = MAX_WAIT_SECONDS
    return f"wait={seconds}"


def wait_read_timeout(prefer: str | None) -> float | None:
    """The minimum read timeout for a create carrying this ``Prefer`` value (docs/retries.md, "Timeouts")."""
    if prefer is None:
        return None
    if prefer == "wait":
        return WAIT_TRUE_MIN_READ
    return float(prefer.partition("=")[2]) + WAIT_READ_MARGIN


def cancel_after_header(value: Any) -> str | None:
    """The ``Cancel-After`` header value for a create's ``cancel_after`` argument
    (docs/predictions.md, "Creating a prediction").

    Numbers and timedeltas become whole seconds rounded up (``"<n>s"``, at least 5); strings such
    as ``"1h30m"`` are sent verbatim; ``None`` → no header.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("cancel_after must not be an empty string")
        return text
    if isinstance(value, _dt.timedelta):
        seconds: float = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value
    else:
        raise TypeError(
            "cancel_after must be a number of seconds, a datetime.timedelta or a duration "
            f"string such as '1h30m', not {value!r}"
        )
    if not math.isfinite(seconds):
        raise ValueError(f"cancel_after must be a finite duration, not {value!r}")
    whole = math.ceil(seconds)
    if whole < MIN_CANCEL_AFTER_SECONDS:
        raise ValueError(
            f"cancel_after must be at least {MIN_CANCEL_AFTER_SECONDS} seconds, not {value!r}"
        )
    return f"{whole}s"
