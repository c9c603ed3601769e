"""WAL checkpoints off the request path: a thread of the store copies the log into the file.

SQLite in WAL mode appends each commit to the ``-wal`` file; by default the connection that
commits also *checkpoints* (copies the log back into the database file and syncs it) once the
log passes 1,000 pages, inside that commit. The store's commits run where requests are
answered, so that copy and its ``fsync`` would land on the request that happens to cross the
threshold (measured: about 60% of a commit's time, averaged over the commits of a busy
server). Instead, the store's connection only checkpoints as a safety net, past
``SAFETY_PAGES``, and :class:`Checkpointer` runs passive checkpoints on its own connection in
its own thread, ``INTERVAL`` seconds after a commit at most. A passive checkpoint never waits
for readers or writers; SQLite's C code runs it without Python's global lock, so the server's
event loop goes on meanwhile.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

from .debounce import Debounced

__all__ = ["INTERVAL", "SAFETY_PAGES", "Checkpointer"]

log = logging.getLogger("replicate.local")

#: Seconds between a commit and the passive checkpoint that copies it at most.
INTERVAL = 0.1
#: WAL pages past which the committing connection checkpoints itself all the same (a stalled
#: checkpointer must not let the log grow without bound).
SAFETY_PAGES = 20_000


class Checkpointer:
    """Passive WAL checkpoints of the database file ``path`` in a thread of their own.

    ``committed()`` tells it a commit happened (cheap: one flag); the thread, started on the
    first one, checkpoints at most ``interval`` seconds later. ``close()`` stops it.
    """

    def __init__(self, path: str, interval: float = INTERVAL) -> None:
        # Opened later, in the thread: a relative path must not follow a change of directory
        # (a model may change the process's) to another file.
        self.path = os.path.abspath(path)
        self._conn: sqlite3.Connection | None = None  # the thread's, opened by its first run
        #: Passive checkpoints run so far; ``checkpointed`` is set after each one.
        self.runs = 0
        self.checkpointed = threading.Event()
        self._later = Debounced(self._checkpoint, interval, "replicate-local-checkpoint")

    def committed(self) -> None:
        """A commit happened: checkpoint soon."""
        self._later.poke()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        if self._later.close() and self._conn is not None:
            self._conn.close()
            self._conn = None

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout=0")
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # busy or gone: the next commit tries again
            log.debug("passive WAL checkpoint skipped", exc_info=True)
        self.runs += 1
        self.checkpointed.set()
