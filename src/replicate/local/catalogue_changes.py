"""Noticing every change to the catalogue (the ``models`` and ``versions`` tables).

The registry answers model and version lookups from memory while the catalogue is
unchanged; :meth:`CatalogueChanges.stamp` tells it, cheaply and exactly, whether it may have
changed since an earlier lookup. Two counters make up the stamp:

* changes made through the store's own connection, counted by TEMP triggers that call back
  into Python (they live in that connection only), including changes of a transaction still
  open and of one rolled back (:meth:`CatalogueChanges.changed`);
* committed changes made by anyone: triggers stored in the database file (plain SQL, so every
  program writing the file runs them, whatever its version) count them in the one-row table
  ``catalogue_changes``. Another server process on the same file is seen through this
  counter, which a second, read-only connection reads, so that a lookup never waits for the
  store's lock (held by the runner's writes) and a prediction's commit does not count.
"""

from __future__ import annotations

import sqlite3
import threading

#: The tables whose every change counts.
CATALOGUE_TABLES = ("models", "versions")
_OPS = ("INSERT", "UPDATE", "DELETE")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS catalogue_changes "
    "(id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);\n"
    "INSERT OR IGNORE INTO catalogue_changes (id, n) VALUES (0, 0);\n"
    + "".join(
        f"CREATE TRIGGER IF NOT EXISTS catalogue_{table}_{op.lower()} AFTER {op} ON {table} "
        "BEGIN UPDATE catalogue_changes SET n = n + 1; END;\n"
        for table in CATALOGUE_TABLES
        for op in _OPS
    )
)


class CatalogueChanges:
    """The catalogue's change counters for a store's connection ``conn`` to ``path``.

    Create it with the store's lock held, after the catalogue tables exist.
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.local = 0
        conn.executescript(_SCHEMA)
        conn.create_function("replicate_catalogue_changed", 0, self.changed)
        for table in CATALOGUE_TABLES:
            for op in _OPS:
                conn.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS replicate_{table}_{op.lower()} "
                    f"AFTER {op} ON main.{table} BEGIN SELECT replicate_catalogue_changed(); END"
                )
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        if path != ":memory:":  # no other connection can reach a private database
            self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._reader.execute("PRAGMA busy_timeout=5000")

    def changed(self) -> None:
        """Count a change made through the store's connection (its lock held)."""
        self.local += 1

    def stamp(self) -> tuple[int, int]:
        """A value that differs whenever the catalogue may have changed since it was read.

        Read it before reading the catalogue; what was read stays valid while the stamp is
        equal. ``(own changes, committed changes)``: committed ones are read on the second
        connection (``fetchall`` ends its read transaction, so the next read sees new commits).
        """
        local = self.local
        reader = self._reader
        if reader is None:
            return (local, 0)
        with self._lock:
            rows = reader.execute("SELECT n FROM catalogue_changes").fetchall()
        return (local, rows[0][0] if rows else -1)

    def close(self) -> None:
        """Close the second connection."""
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
