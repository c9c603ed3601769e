"""Client-side pacing of requests to the API's rate limits (sans-I/O; see docs/batch.md).

The API allows 600 prediction creates and 3,000 other requests per minute per account, with
short bursts above. :class:`RateBucket` is a token bucket that hands out *reservations*: a caller
asks "when may I send?" and sleeps that long, so any number of concurrent callers share one
bucket without a lock held across the wait. It adapts to the server: a 429 halves the rate and
blocks the bucket until ``Retry-After``; every answer that is not a 429 wins back a little of the
configured rate (additive increase, multiplicative decrease).

:class:`Pacer` holds one bucket per category (creates, everything else) and counts the requests
spent, in total and over the last minute. Nothing here sleeps or does I/O; the clock is injected.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CREATE", "OTHER", "Pacer", "RateBucket", "is_create_request"]

CREATE = "create"
OTHER = "other"

#: Prediction creates: ``POST /v1/predictions``, ``/v1/models/o/n/predictions``,
#: ``/v1/deployments/o/n/predictions`` (and versions' trainings count as creates too).
_CREATE_PATH = re.compile(
    r"/v1/(predictions|models/[^/]+/[^/]+/predictions|deployments/[^/]+/[^/]+/predictions"
    r"|models/[^/]+/[^/]+/versions/[^/]+/trainings)/?$"
)


def is_create_request(method: str, path: str) -> bool:
    """Whether a request counts against the API's create limit."""
    return method.upper() == "POST" and _CREATE_PATH.search(path) is not None


class RateBucket:
    """A token bucket of ``per_minute`` requests with ``burst`` capacity that adapts to 429s.

    :meth:`reserve` takes one token now (the balance may go negative) and returns how many
    seconds the caller must wait before sending; the reservations of concurrent callers are
    spaced by ``1 / rate``. :meth:`throttled` (a 429 answer) halves the rate, down to a floor of
    an eighth of the configured one, and blocks the bucket until ``retry_after`` seconds from
    now. :meth:`accepted` (any other answer) wins back 2% of the configured rate.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (isinstance(per_minute, (int, float)) and math.isfinite(per_minute)):
            raise TypeError(f"per_minute must be a finite number, got {per_minute!r}")
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute!r}")
        self.configured = per_minute / 60.0
        self.rate = self.configured
        # A second's worth of requests by default (at least 1): short bursts, as the API allows.
        self.burst = max(1.0, float(burst) if burst is not None else self.configured)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._blocked_until = 0.0

    @property
    def per_minute(self) -> float:
        """The current (adapted) rate, in requests per minute."""
        return self.rate * 60.0

    def reserve(self) -> float:
        """Take a token; the seconds to wait before sending (0 when one is available now)."""
        now = self._clock()
        self._refill(now)
        self._tokens -= 1.0
        wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        return max(wait, self._blocked_until - now, 0.0)

    def throttled(self, retry_after: float | None) -> None:
        """The server answered 429: slow down and hold off until ``retry_after`` has passed."""
        now = self._clock()
        self._refill(now)
        self.rate = max(self.configured / 8.0, self.rate / 2.0)
        pause = retry_after if retry_after is not None and retry_after >= 0 else 1.0
        self._blocked_until = max(self._blocked_until, now + min(pause, 300.0))
        # Reservations made before the 429 were made at the old rate: start from empty.
        self._tokens = min(self._tokens, 0.0)

    def accepted(self) -> None:
        """The server accepted a request: recover towards the configured rate."""
        if self.rate < self.configured:
            self.rate = min(self.configured, self.rate + self.configured * 0.02)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)


@dataclass
class Pacer:
    """Per-category buckets and the count of requests spent (see the module docstring)."""

    creates_per_minute: float = 600
    requests_per_minute: float = 3000
    clock: Callable[[], float] = time.monotonic
    sent: dict[str, int] = field(default_factory=lambda: {CREATE: 0, OTHER: 0})
    throttles: int = 0
    _recent: deque[float] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        self.buckets = {
            CREATE: RateBucket(self.creates_per_minute, clock=self.clock),
            OTHER: RateBucket(self.requests_per_minute, clock=self.clock),
        }

    def category(self, method: str, path: str) -> str:
        """``create`` or ``other``."""
        return CREATE if is_create_request(method, path) else OTHER

    def reserve(self, category: str) -> float:
        """Count a request about to be sent; the seconds to wait first."""
        self.sent[category] += 1
        now = self.clock()
        self._recent.append(now)
        while self._recent and self._recent[0] < now - 60.0:
            self._recent.popleft()
        return self.buckets[category].reserve()

    def answered(self, category: str, status: int, retry_after: float | None) -> None:
        """Adapt to an answer's status (429 slows the category down)."""
        if status == 429:
            self.throttles += 1
            self.buckets[category].throttled(retry_after)
        else:
            self.buckets[category].accepted()

    @property
    def total(self) -> int:
        """Requests sent so far, every attempt counted."""
        return sum(self.sent.values())

    def per_minute(self) -> int:
        """Requests sent during the last 60 seconds."""
        now = self.clock()
        while self._recent and self._recent[0] < now - 60.0:
            self._recent.popleft()
        return len(self._recent)
