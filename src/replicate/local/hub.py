"""Change notifications from worker threads to asyncio handlers (waits and SSE)."""

from __future__ import annotations

import asyncio
import threading


class _Waiter:
    """One registered ``asyncio.Event`` and the loop (and thread) it belongs to."""

    __slots__ = ("event", "loop", "scheduled", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.event = asyncio.Event()
        self.loop = loop
        self.thread = threading.get_ident()
        self.scheduled = False  # a wake-up is on its way: more changes need no other


class Hub:
    """Per-prediction wake-ups: worker threads call ``notify``; handlers await ``waiter``.

    A waiter is woken once however many changes come before it runs (a streaming model's
    tokens cost one wake-up per batch the reader takes, not one each), and directly, without
    a hop through the loop's self-pipe, when the change happens on its own loop's thread (an
    inline model run by a request).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[_Waiter]] = {}

    def register(self, key: str) -> asyncio.Event:
        """A fresh event set on the next ``notify(key)``; unregister it when done."""
        waiter = _Waiter(asyncio.get_running_loop())
        with self._lock:
            self._waiters.setdefault(key, []).append(waiter)
        return waiter.event

    def unregister(self, key: str, ev: asyncio.Event) -> None:
        """Forget an event from ``register``."""
        with self._lock:
            entries = self._waiters.get(key)
            if not entries:
                return
            entries[:] = [w for w in entries if w.event is not ev]
            if not entries:
                del self._waiters[key]

    def notify(self, key: str) -> None:
        """Wake every waiter for ``key`` (safe from any thread)."""
        entries = self._waiters.get(key)
        # No one waits (a waiter registers before it reads), or a wake-up is on its way.
        if not entries or (len(entries) == 1 and entries[0].scheduled):
            return
        with self._lock:
            entries = self._waiters.get(key)
            if not entries:
                return
            due = [w for w in entries if not w.scheduled]
            for w in due:
                w.scheduled = True
        me = threading.get_ident()
        for w in due:
            if w.thread == me:
                w.event.set()
                continue
            try:
                w.loop.call_soon_threadsafe(w.event.set)
            except RuntimeError:
                pass  # loop closed
