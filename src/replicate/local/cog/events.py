"""What a Cog prediction reports: files, events, the final result, and a run's book-keeping."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["TERMINAL_STATUSES", "CogEvent", "CogFile", "CogResult", "EventCallback", "Run"]

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})
#: The ``error`` of a prediction whose runtime process died under it.
WORKER_CRASHED = "worker crashed"


@dataclass(frozen=True)
class CogFile:
    """A file produced by a Cog model, stored locally until the server takes it over."""

    path: Path
    filename: str
    content_type: str

    def read_bytes(self) -> bytes:
        """The file's content."""
        return self.path.read_bytes()


@dataclass
class CogResult:
    """How a prediction ended. ``output`` may contain :class:`CogFile` values."""

    status: Literal["succeeded", "failed", "canceled"]
    output: Any = None
    error: str | None = None
    logs: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CogEvent:
    """One thing that happened to a prediction, in order.

    ``type`` is ``"start"`` (the model began running; ``data`` is ``None``), ``"logs"``
    (``data`` is new log text), ``"output"`` (``data`` is one chunk of an iterator output,
    possibly a :class:`CogFile`) or ``"completed"`` (``data`` is the :class:`CogResult`).
    """

    type: Literal["start", "logs", "output", "completed"]
    data: Any = None


EventCallback = Callable[[CogEvent], None]


class Run:
    """Book-keeping for one in-flight prediction."""

    def __init__(self, prediction_id: str, on_event: EventCallback | None) -> None:
        self.id = prediction_id
        self.on_event = on_event
        self.items: deque[tuple[str, Any]] = deque()
        self.cond = threading.Condition()
        self.dispatched = False
        self.cancel_requested_at: float | None = None
        self.started = False
        self.logs = ""
        self.emitted_chunks = 0
        self.done = False

    def put(self, kind: str, payload: Any = None) -> None:
        with self.cond:
            self.items.append((kind, payload))
            self.cond.notify_all()

    def get(self, timeout: float) -> tuple[str, Any] | None:
        with self.cond:
            if not self.items:
                self.cond.wait(timeout)
            return self.items.popleft() if self.items else None
