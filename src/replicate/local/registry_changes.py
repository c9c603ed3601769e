"""Noticing every change to the registry's tables (``models`` and ``versions``).

The registry answers model and version lookups from memory while its tables are
unchanged; :meth:`RegistryChanges.stamp` tells it, cheaply and exactly, whether it may have
changed since an earlier lookup. Two counters make up the stamp:

* changes made through the store's own connection, counted by TEMP triggers that call back
  into Python (they live in that connection only), including changes of a transaction still
  open and of one rolled back (:meth:`RegistryChanges.changed`);
* committed changes made by anyone: triggers stored in the database file (plain SQL, so every
  program writing the file runs them, whatever its version) count them in the one-row table
  ``registry_changes``. Another server process on the same file is seen through this
  counter, which a second, read-only connection reads, so that a lookup never waits for the
  store's lock and a prediction's commit does not count (as both would with ``PRAGMA
  data_version`` on the store's connection).

Even that read costs a query per lookup (and a release of the GIL, which under load hands
the interpreter to other threads: about a tenth of the server's throughput). So the counter
is read again only when something was committed since it was last read: every commit in WAL
mode rewrites the header of the WAL index (the ``-shm`` file every connection to the
database shares; https://www.sqlite.org/walformat.html), whose change counter this module
compares, mapped read-only, without a query. Without a WAL index (another journal mode), the
counter is read every time. Since this server commits too (a transaction per batch of
predictions), a changed header is looked into at most every ``RECHECK_SECONDS``: another
process's change to models or versions is seen within that time, this server's own at once.
"""

from __future__ import annotations

import mmap
import sqlite3
import struct
import threading
import time

#: Seconds between two reads of the committed changes' counter at most: how late a change
#: another process makes to the registry's tables may be seen (this server's own are seen
#: at once). Every commit (each of this server's predictions) would have it read otherwise.
RECHECK_SECONDS = 0.05
#: The tables whose every change counts.
REGISTRY_TABLES = ("models", "versions")
_OPS = ("INSERT", "UPDATE", "DELETE")
#: The WAL-index header: two copies of 48 bytes, rewritten (change counter included) by every
#: commit, starting with the format version, whose ``isInit`` byte is at offset 12.
_HEADER_SIZE = 96
_WAL_INDEX_VERSION = 3007000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS registry_changes "
    "(id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);\n"
    "INSERT OR IGNORE INTO registry_changes (id, n) VALUES (0, 0);\n"
    + "".join(
        f"CREATE TRIGGER IF NOT EXISTS registry_{table}_{op.lower()} AFTER {op} ON {table} "
        "BEGIN UPDATE registry_changes SET n = n + 1; END;\n"
        for table in REGISTRY_TABLES
        for op in _OPS
    )
)


class RegistryChanges:
    """The change counters of the registry's tables, for the store's connection ``conn``.

    Create it with the store's lock held, after those tables exist.
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.local = 0
        conn.executescript(_SCHEMA)
        conn.create_function("replicate_registry_changed", 0, self.changed)
        for table in REGISTRY_TABLES:
            for op in _OPS:
                conn.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS replicate_registry_{table}_{op.lower()} "
                    f"AFTER {op} ON main.{table} BEGIN SELECT replicate_registry_changed(); END"
                )
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._wal_index: mmap.mmap | None = None
        #: The WAL-index header read before the counter was last read, and that count.
        self._seen: tuple[bytes, int] | None = None
        self._read_at = 0.0  # when the counter was last read (time.monotonic)
        if path != ":memory:":  # no other connection can reach a private database
            self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._reader.execute("PRAGMA busy_timeout=5000")
            self._wal_index = _map_wal_index(conn, path)

    def changed(self) -> None:
        """Count a change made through the store's connection (its lock held)."""
        self.local += 1

    def stamp(self) -> tuple[int, int]:
        """A value that differs whenever the registry's tables may have changed since it was read.

        Read it before reading them; what was read stays valid while the stamp is
        equal. ``(own changes, committed changes)``: committed ones are read on the second
        connection (``fetchall`` ends its read transaction, so the next read sees new commits).
        """
        local = self.local
        if self._reader is None:
            return (local, 0)
        wal_index, seen = self._wal_index, self._seen
        if wal_index is not None and seen is not None:
            if wal_index[:_HEADER_SIZE] == seen[0]:
                return (local, seen[1])  # nothing committed since the count was read
            if time.monotonic() - self._read_at < RECHECK_SECONDS:
                # Something was committed, most likely by this server (its predictions):
                # other processes' changes are looked for at most this often.
                return (local, seen[1])
        with self._lock:
            if self._reader is None:  # closed
                return (local, -1)
            header = self._wal_index[:_HEADER_SIZE] if self._wal_index is not None else None
            rows = self._reader.execute("SELECT n FROM registry_changes").fetchall()
            count = rows[0][0] if rows else -1
            if header is not None:
                self._seen = (header, count)
                self._read_at = time.monotonic()
        return (local, count)

    def close(self) -> None:
        """Close the second connection and the WAL index (before the store's connection)."""
        with self._lock:
            wal_index, self._wal_index = self._wal_index, None
            if wal_index is not None:
                wal_index.close()
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def _map_wal_index(conn: sqlite3.Connection, path: str) -> mmap.mmap | None:
    """The header of the WAL index of ``conn``'s database mapped read-only, or None (not in
    WAL mode, or not as expected).

    The store's connection keeps the ``-shm`` file at its size while it is open (SQLite
    truncates it only on a first open that finds no other connection).
    """
    try:
        if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            return None
        with open(path + "-shm", "rb") as f:
            view = mmap.mmap(f.fileno(), _HEADER_SIZE, access=mmap.ACCESS_READ)
    except (OSError, ValueError, sqlite3.Error):
        return None
    if struct.unpack_from("=I", view, 0)[0] != _WAL_INDEX_VERSION or view[12] != 1:
        view.close()
        return None
    return view
