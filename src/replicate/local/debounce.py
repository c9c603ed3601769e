"""A call made in a thread of its own a little after it is asked for, once for many asks.

The store commits deferred writes and copies its WAL into the file this way: requests ask
(``poke``) at every write; the work runs ``delay`` seconds after the first ask, off the
event loop, and covers every ask of that while.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Debounced"]

log = logging.getLogger("replicate.local")


class Debounced:
    """Calls ``work()`` in a daemon thread named ``name``, ``delay`` seconds after a
    :meth:`poke`; the pokes of that while are served by that one call. The thread starts on
    the first poke; :meth:`close` stops it."""

    def __init__(self, work: Callable[[], object], delay: float, name: str) -> None:
        self.work = work
        self.delay = delay
        self.name = name
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Ask for a call (cheap when one is already asked for)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                    self._thread.start()
        if not self._wake.is_set():
            self._wake.set()

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the thread (a call under way ends first, within ``timeout`` seconds); whether
        it has stopped (no thread ever started counts)."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        self._wake.set()
        if thread is None or thread is threading.current_thread():
            return thread is None
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            if self._stop.wait(self.delay):
                return
            self._wake.clear()  # pokes from now on ask for the next call
            try:
                self.work()
            except Exception:  # pragma: no cover - logged; the next poke tries again
                log.exception("%s failed", self.name)
