"""Change notifications from worker threads to asyncio handlers (waits and SSE)."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict


class Hub:
    """Per-prediction wake-ups: worker threads call ``notify``; handlers await ``waiter``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(set)
        )

    def register(self, key: str) -> asyncio.Event:
        """A fresh event set on the next ``notify(key)``; unregister it when done."""
        ev = asyncio.Event()
        loop = asyncio.get_running_loop()
        with self._lock:
            self._waiters[key].add((loop, ev))
        return ev

    def unregister(self, key: str, ev: asyncio.Event) -> None:
        """Forget an event from ``register``."""
        with self._lock:
            entries = self._waiters.get(key)
            if not entries:
                return
            for entry in list(entries):
                if entry[1] is ev:
                    entries.discard(entry)
            if not entries:
                self._waiters.pop(key, None)

    def notify(self, key: str) -> None:
        """Wake every waiter for ``key`` (safe from any thread)."""
        with self._lock:
            entries = list(self._waiters.get(key, ()))
        for loop, ev in entries:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:
                pass  # loop closed
