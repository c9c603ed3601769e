"""Test controls: injected faults and the request log (moto-style, off by default)."""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

LOGGED_HEADERS = (
    "x-stainless-retry-count",
    "prefer",
    "cancel-after",
    "idempotency-key",
    "last-event-id",
)


@dataclass
class Fault:
    """One injected fault: a matcher, an action and a budget."""

    method: str | None = None
    path: str | None = None
    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: int | None = None
    delay_ms: int | None = None
    sse_drop_after: int | None = None
    times: int | None = None
    id: int = 0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return not (self.path is not None and not fnmatch.fnmatchcase(path, self.path))

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


class Faults:
    """Faults applied in creation order until their budget runs out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next = 1

    def add(self, **kwargs: Any) -> Fault:
        """Add a fault; keyword arguments are ``Fault`` fields."""
        fault = Fault(**kwargs)
        if fault.status is None and fault.delay_ms is None and fault.sse_drop_after is None:
            raise ValueError("a fault needs an action: status, delay_ms or sse_drop_after")
        with self._lock:
            fault.id = self._next
            self._next += 1
            self._faults.append(fault)
        return fault

    def list(self) -> list[Fault]:
        """Active faults."""
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, *, sse: bool = False) -> Fault | None:
        """The first matching fault of the right kind, consuming one use of its budget."""
        with self._lock:
            for f in self._faults:
                if (f.sse_drop_after is not None) != sse or not f.matches(method, path):
                    continue
                f.hits += 1
                if f.times is not None and f.hits >= f.times:
                    self._faults.remove(f)
                return f
        return None


class RequestLog:
    """Recent requests: method, path, chosen headers, status and timing (never tokens)."""

    def __init__(self, maxlen: int = 10000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)

    def list(self) -> list[dict[str, Any]]:
        """Every recorded request, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

    @staticmethod
    def now() -> float:
        """Timestamp for entries."""
        return time.time()
