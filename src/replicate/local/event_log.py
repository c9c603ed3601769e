"""The SSE events of the predictions a store created, kept in memory for the streams.

A prediction created by this process numbers its events 0, 1, 2, ... (``Store.append_event``):
while all of them are known here, a stream reads them from memory rather than querying the
events table (one query per read, and one per batch of a live stream, otherwise). The store
calls these methods with its lock held.
"""

from __future__ import annotations

import time

#: How many predictions' events are kept, how many events each at most (a longer log is
#: read from the table), and for how long (seconds) after its ``done``: long enough for the
#: stream read that follows a prediction's end, short enough that another process's change
#: of its events (it only ever ends predictions of a server that stopped) cannot matter.
LOGS_KEPT = 4096
EVENTS_KEPT = 10_000
ENDED_FOR = 1.0
#: Events kept in all (some 30 MB): past it, a log that grows is dropped (read from the table).
TOTAL_EVENTS_KEPT = 200_000

Event = tuple[int, str, str, float]  # seq, type, data, t


class EventLogs:
    """Every event of each prediction this store created, from its creation until a while
    after its ``done``; a log whose numbering is not contiguous from 0 is dropped (its
    events are then read from the table)."""

    def __init__(self) -> None:
        self._logs: dict[str, list[Event]] = {}
        self._ended: dict[str, tuple[float, int]] = {}  # monotonic time and number of ``done``
        self._count = 0  # events in all the logs

    def start(self, pid: str) -> None:
        """A prediction was created here: it has no events yet."""
        if len(self._logs) >= LOGS_KEPT:
            self._sweep()
        self.drop(pid)  # a log started again starts empty
        self._logs[pid] = []

    def add(self, pid: str, seq: int, type_: str, data: str, t: float) -> None:
        """Event ``seq`` of ``pid`` was appended (deferred or committed)."""
        log = self._logs.get(pid)
        if log is None:
            return
        if seq != len(log) or seq >= EVENTS_KEPT or self._count >= TOTAL_EVENTS_KEPT:
            self.drop(pid)
            return
        log.append((seq, type_, data, t))
        self._count += 1
        if type_ == "done":
            self._ended[pid] = (time.monotonic(), seq)

    def drop(self, pid: str) -> None:
        """Forget a log (its events may differ from what is stored)."""
        log = self._logs.pop(pid, None)
        if log is not None:
            self._count -= len(log)
        self._ended.pop(pid, None)

    def clear(self) -> None:
        """Forget every log (a statement changed the events table)."""
        self._logs.clear()
        self._ended.clear()
        self._count = 0

    def _log(self, pid: str) -> list[Event] | None:
        log = self._logs.get(pid)
        if log is None:
            return None
        ended = self._ended.get(pid)
        if ended is not None and time.monotonic() - ended[0] >= ENDED_FOR:
            self.drop(pid)
            return None
        return log

    def after(self, pid: str, seq: int, limit: int) -> list[Event] | None:
        """The events numbered above ``seq`` (at most ``limit``), as ``Store.event_rows``
        gives them; None when they are not all known here."""
        log = self._log(pid)
        if log is None:
            return None
        start = seq + 1 if seq >= 0 else 0
        return log[start : start + limit]

    def ended_by(self, pid: str, seq: int) -> bool | None:
        """Whether ``done`` is numbered ``seq`` or below; None when not known here."""
        log = self._log(pid)
        if log is None:
            return None
        ended = self._ended.get(pid)
        return ended is not None and ended[1] <= seq

    def _sweep(self) -> None:
        """Make room: drop the logs past their time, or all if that is not enough."""
        now = time.monotonic()
        for pid in [p for p, ended in self._ended.items() if now - ended[0] >= ENDED_FOR]:
            self.drop(pid)
        if len(self._logs) >= LOGS_KEPT:
            self.clear()
