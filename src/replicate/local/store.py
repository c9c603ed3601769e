"""SQLite persistence: one connection in WAL mode behind a lock.

The store offers generic ``execute``/``query`` helpers (used by the self-contained
``files`` and ``webhooks`` modules, which create their own tables) plus the helpers
for models, versions, predictions and SSE events.

Writes of a running prediction may be *deferred* (``defer=True``): they wait in memory and
are committed together, in one transaction, by the next write that is not deferred (a
prediction's end), by the next generic statement, or by the flusher thread at most
``FLUSH_DELAY`` seconds later. Every read of this store sees them at once (the prediction
and event helpers overlay them, the generic ones commit them first), so only another
process reading the same file sees them late (see docs/local-server.md, "Persistence").
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .debounce import Debounced
from .event_log import EventLogs
from .gate import json_text
from .registry_changes import RegistryChanges
from .wal import SAFETY_PAGES, Checkpointer

log = logging.getLogger("replicate.local")

SCHEMA_VERSION = 2
_OPEN_STREAMS_REMEMBERED = 4096
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
#: Seconds a deferred write waits at most before the flusher thread commits it.
FLUSH_DELAY = 0.05

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    owner TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT, visibility TEXT NOT NULL DEFAULT 'public', hardware TEXT,
    github_url TEXT, paper_url TEXT, license_url TEXT, cover_image_url TEXT, weights_url TEXT,
    readme TEXT, tags TEXT NOT NULL DEFAULT '[]', is_official INTEGER NOT NULL DEFAULT 1,
    source TEXT NOT NULL DEFAULT 'user', created_at REAL NOT NULL,
    PRIMARY KEY (owner, name)
);
CREATE TABLE IF NOT EXISTS versions (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, created_at REAL NOT NULL,
    cog_version TEXT, openapi_schema TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_model ON versions (owner, name, created_at);
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'prediction', account TEXT NOT NULL,
    model TEXT NOT NULL, version TEXT NOT NULL, deployment TEXT,
    status TEXT NOT NULL, input TEXT NOT NULL, output TEXT, logs TEXT NOT NULL DEFAULT '',
    error TEXT, metrics TEXT, created_at REAL NOT NULL, started_at REAL, completed_at REAL,
    deadline REAL, data_removed INTEGER NOT NULL DEFAULT 0, webhook TEXT,
    webhook_events_filter TEXT, stream INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT 'api',
    is_example INTEGER NOT NULL DEFAULT 0, origin TEXT NOT NULL DEFAULT '', extra TEXT,
    instance TEXT
);
CREATE INDEX IF NOT EXISTS predictions_order ON predictions (created_at, id);
CREATE INDEX IF NOT EXISTS predictions_active ON predictions (status)
    WHERE status IN ('starting', 'processing');
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    prediction_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,
    t REAL NOT NULL, PRIMARY KEY (prediction_id, seq)
);
"""

#: The predictions table's columns, in order, with the defaults of those that have one.
_PREDICTION_COLUMNS: dict[str, Any] = {
    "id": ...,
    "kind": "prediction",
    "account": ...,
    "model": ...,
    "version": ...,
    "deployment": None,
    "status": ...,
    "input": ...,
    "output": None,
    "logs": "",
    "error": None,
    "metrics": None,
    "created_at": ...,
    "started_at": None,
    "completed_at": None,
    "deadline": None,
    "data_removed": 0,
    "webhook": None,
    "webhook_events_filter": None,
    "stream": 0,
    "source": "api",
    "is_example": 0,
    "origin": "",
    "extra": None,
    "instance": None,
}

_INSERT_EVENT = "INSERT INTO events (prediction_id, seq, type, data, t) VALUES (?, ?, ?, ?, ?)"


class Store:
    """Thread-safe access to the SQLite database (``":memory:"`` or a file path)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._next_seq: dict[str, int] = {}  # see append_event
        # Deferred writes (see the module's docstring): rows to insert, columns to set, events.
        self._new_rows: dict[str, dict[str, Any]] = {}
        self._row_updates: dict[str, dict[str, Any]] = {}
        self._new_events: list[tuple[str, int, str, str, float]] = []
        self._renumbered: dict[str, int] = {}  # see _flush_locked
        # Rows this store inserted whole and committed lately, as committed (with later
        # updates applied): a get right after needs no query. Any other write to the
        # predictions table forgets them all.
        self._committed: dict[str, tuple[float, dict[str, Any]]] = {}
        # The events of the predictions created here, for the streams (see event_log.py).
        self._logs = EventLogs()
        #: Commits what is deferred ``FLUSH_DELAY`` seconds after a write was deferred.
        self._flusher = Debounced(self._flush_deferred, FLUSH_DELAY, "replicate-local-store")
        self._batch: _Batch | None = None  # see durable
        self._closed = False
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            #: Copies the WAL into the file off the request path (see wal.py).
            self.checkpoints: Checkpointer | None = None
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")
                self.checkpoints = Checkpointer(path)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"The database {path} was written by a newer local server "
                    f"(schema {version} > {SCHEMA_VERSION}); upgrade replicate to use it."
                )
            self._conn.executescript(_SCHEMA)
            cols = {r[1] for r in self._conn.execute("PRAGMA table_info(predictions)")}
            if "instance" not in cols:  # migration 1 -> 2
                self._conn.execute("ALTER TABLE predictions ADD COLUMN instance TEXT")
            # Only unfinished predictions are looked up by status (at a restart): an index of
            # them alone costs a finished prediction's insert nothing.
            self._conn.execute("DROP INDEX IF EXISTS predictions_status")
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            #: Counts the changes to models and versions (see registry_changes.py).
            self.registry_changes = RegistryChanges(self._conn, path)

    # ------------------------------------------------------------------ generic
    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement; returns ``lastrowid`` (or rowcount for updates)."""
        with self._lock:
            self._settle(sql)
            cur = self._conn.execute(sql, params)
            self._committed_one()
            return cur.lastrowid if cur.lastrowid else cur.rowcount

    def executescript(self, sql: str) -> None:
        """Run a script (table creation)."""
        with self._lock:
            self._settle(None)
            self._conn.executescript(sql)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts."""
        with self._lock:
            self._settle(sql)
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        with self._lock:
            self._settle(sql)
            r = self._conn.execute(sql, params).fetchone()
            return dict(r) if r is not None else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock and wrap statements in one transaction."""
        with self._lock:
            self._settle(None)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                # What was read inside the transaction (and cached) is about to be undone.
                self.registry_changes.changed()
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
                self._committed_one()

    def _settle(self, sql: str | None) -> None:
        """Before a generic statement (lock held): commit what is deferred if ``sql`` may
        read or write it, and forget the rows and events kept in memory if it may change
        them (``None``: a statement that may do anything)."""
        if sql is not None and not _touches_predictions(sql):
            return
        self._flush_locked()
        if sql is None or not _is_read(sql):
            self._committed.clear()
            self._logs.clear()

    def close(self) -> None:
        """Commit what is deferred and close the connection."""
        self._closed = True
        self._flusher.close()
        with self._lock:
            try:
                self._flush_locked()
            finally:
                if self.checkpoints is not None:
                    self.checkpoints.close()
                self.registry_changes.close()
                self._conn.close()

    # ------------------------------------------------------------------ deferred writes
    def flush(self) -> None:
        """Commit the deferred writes now."""
        with self._lock:
            self._flush_locked()

    def pending(self, pid: str) -> bool:
        """Whether a change of prediction ``pid`` waits to be committed."""
        return pid in self._new_rows or pid in self._row_updates

    async def durable(self) -> None:
        """Return once what was deferred so far is committed: the group commit of an event
        loop. The requests that get here within two turns of the loop wait for the same
        transaction, so that answers never tell of a change a crash would lose, and a
        commit's cost is shared."""
        with self._lock:  # a commit the flusher thread has under way ends first
            if not (self._new_rows or self._row_updates or self._new_events):
                return
        loop = asyncio.get_running_loop()
        batch = self._batch
        if batch is None or batch.loop is not loop:
            batch = self._batch = _Batch(loop)
            # Committed two turns of the loop from now, not one: a request whose bytes the
            # loop reads in this turn starts its task in the next one, and joins the batch
            # there. Measured: half again as many rows per commit under load, and a higher
            # throughput and lower p99 (benchmarks/scenarios/server_load.py).
            loop.call_soon(loop.call_soon, self._commit_batch, batch)
        # Each waiter waits on its own future (a request that goes away cancels only its wait).
        waiter = loop.create_future()
        batch.waiters.append(waiter)
        await waiter
        if batch.error is not None:
            raise batch.error

    def _commit_batch(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
        try:
            self.flush()
        except BaseException as exc:
            batch.error = exc
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _deferred(self) -> None:
        """A write was deferred (lock held): make sure the flusher commits it soon."""
        self._flusher.poke()

    def _flush_deferred(self) -> None:
        """The flusher's work: commit what is deferred (the writes of its delay go in one
        transaction)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_locked()
            except Exception:  # pragma: no cover - logged (the writes are dropped)
                log.exception("could not commit deferred writes")
            self._renumbered.clear()

    def _flush_locked(self) -> None:
        """Commit the deferred writes in one transaction (lock held).

        On failure they are dropped (logged) and the error raised: a write that cannot be
        stored must not block every later one.
        """
        if not (self._new_rows or self._row_updates or self._new_events):
            return
        rows, self._new_rows = self._new_rows, {}
        updates, self._row_updates = self._row_updates, {}
        events, self._new_events = self._new_events, []
        conn = self._conn
        if len(rows) + len(updates) == 1 and not events:  # one statement commits itself
            try:
                self._write_rows(rows, updates)
            except BaseException:
                log.warning("dropped a prediction write that could not be stored")
                self._logs.clear()
                raise
            self._remember(rows, updates)
            self._committed_one()
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._write_rows(rows, updates)
            if events:
                conn.executemany(_INSERT_EVENT, events)
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            if not events:
                raise
            # An event number taken meanwhile (another process on the same file): again,
            # with these events numbered after the stored ones.
            for pid, *_ in events:
                self._next_seq.pop(pid, None)
                self._logs.drop(pid)
            self._new_rows, self._row_updates = rows, updates
            self._new_events = [
                (pid, self._renumber(pid), type_, data, t) for pid, _, type_, data, t in events
            ]
            self._flush_locked()
            return
        except BaseException:
            conn.execute("ROLLBACK")
            self._logs.clear()
            log.warning(
                "dropped %d deferred prediction writes and %d events that could not be stored",
                len(rows) + len(updates),
                len(events),
            )
            raise
        conn.execute("COMMIT")
        self._remember(rows, updates)
        self._committed_one()

    def _committed_one(self) -> None:
        """A commit happened: the WAL is copied into the file soon (see wal.py)."""
        if self.checkpoints is not None:
            self.checkpoints.committed()

    def _write_rows(
        self, rows: dict[str, dict[str, Any]], updates: dict[str, dict[str, Any]]
    ) -> None:
        # Deferred rows have every column, in order: a few statements of many rows each
        # (binding and stepping one statement per row costs more than the rows' own work).
        values: list[Any] = []
        count = 0
        for data in rows.values():
            values.extend(data.values())
            count += 1
            if count == _ROWS_PER_INSERT:
                self._conn.execute(_multi_insert_sql(count), _encode_flat(values))
                values, count = [], 0
        if count:
            self._conn.execute(_multi_insert_sql(count), _encode_flat(values))
        for pid, data in updates.items():
            self._conn.execute(_update_sql(data), {**self._encode(data), "_pid": pid})

    def _remember(
        self, rows: dict[str, dict[str, Any]], updates: dict[str, dict[str, Any]]
    ) -> None:
        """Keep the rows just committed (see ``_committed``)."""
        committed = self._committed
        for pid, data in updates.items():
            hit = committed.get(pid)
            if hit is not None:
                hit[1].update(data)
        if rows:
            if len(committed) + len(rows) > _COMMITTED_KEPT:
                committed.clear()
            now = time.monotonic()
            for pid, data in rows.items():
                committed[pid] = (now, data)

    def _renumber(self, pid: str) -> int:
        """The next free event number of ``pid`` (stored ones and those renumbered so far)."""
        seq = self._renumbered[pid] = max(self._max_seq(pid), self._renumbered.get(pid, -1) + 1)
        return seq

    # ------------------------------------------------------------------ settings
    def get_setting(self, key: str) -> str | None:
        """A stored setting (secrets, keys)."""
        row = self.one("SELECT value FROM settings WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_setting(self, key: str, value: str) -> None:
        """Store a setting."""
        self.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ------------------------------------------------------------------ predictions
    _JSON_COLS = ("input", "output", "metrics", "webhook_events_filter", "extra")

    def insert_prediction(
        self, row: dict[str, Any], *, defer: bool = False
    ) -> dict[str, Any] | None:
        """Insert a prediction row (JSON columns given as Python values).

        Returns the stored row, decoded as :meth:`get_prediction` gives it (defaults filled
        in), read in the same statement; ``None`` where SQLite is too old for ``RETURNING``.
        ``defer``: keep it in memory until the next commit (see the module's docstring).
        """
        pid = str(row["id"])
        _known_columns(row)
        if defer:  # kept as Python values, encoded when committed
            full = dict(_PREDICTION_COLUMNS)  # every column, in order, with its default
            full.update(row)
            with self._lock:
                self._new_rows[pid] = full
                if full["stream"]:
                    self._expect_events(pid)
                self._deferred()
            return dict(full)
        data = self._encode(row)
        with self._lock:
            self._flush_locked()
            if _RETURNING:
                stored = self._conn.execute(_insert_sql(data) + " RETURNING *", data).fetchall()
            else:  # pragma: no cover - SQLite < 3.35
                self._conn.execute(_insert_sql(data), data)
                stored = []
            self._committed_one()
            if row.get("stream"):
                self._expect_events(pid)
        return self.decode_prediction(dict(stored[0])) if stored else None

    def _expect_events(self, pid: str) -> None:
        """A new prediction with a stream (lock held): its first event is number 0 (see
        ``append_event``), and its events are kept for the stream (see event_log.py). One
        without a stream has no one to read events: its numbers are looked up if it ever
        gets one, and nothing is kept for it (a store serves millions of those)."""
        if len(self._next_seq) >= _OPEN_STREAMS_REMEMBERED:
            self._next_seq.clear()
        self._next_seq[pid] = 0
        self._logs.start(pid)

    def update_prediction(self, pid: str, *, defer: bool = False, **fields: Any) -> None:
        """Update columns of a prediction (JSON columns given as Python values); ``defer``:
        commit with the next commit (see the module's docstring), else now.

        The values are kept as they are until committed; a list ``output`` may go on growing
        meanwhile (a running prediction's: what is committed is then its latest state, and
        every read gets a copy of it)."""
        if not fields:
            return
        _known_columns(fields)
        with self._lock:  # kept as Python values, encoded when committed
            new = self._new_rows.get(pid)
            if new is not None:
                new.update(fields)
            else:
                self._row_updates.setdefault(pid, {}).update(fields)
            if defer:
                self._deferred()
            else:
                self._flush_locked()

    @classmethod
    def _encode(cls, fields: dict[str, Any]) -> dict[str, Any]:
        data = dict(fields)
        for c in cls._JSON_COLS:
            if c in data and data[c] is not None:
                data[c] = json.dumps(data[c])
        return data

    @classmethod
    def decode_prediction(cls, row: dict[str, Any] | None) -> dict[str, Any] | None:
        """Decode JSON columns of a raw prediction row.

        A column that is not JSON (a damaged database) decodes as None rather than making
        the row unreadable everywhere it is shown.
        """
        if row is None:
            return None
        for c in cls._JSON_COLS:
            if row.get(c) is not None:
                try:
                    row[c] = json.loads(row[c])
                except (TypeError, ValueError):
                    log.warning("prediction %s: column %s is not JSON", row.get("id"), c)
                    row[c] = None
        return row

    def get_prediction(self, pid: str) -> dict[str, Any] | None:
        """A decoded prediction row."""
        with self._lock:
            new = self._new_rows.get(pid)
            if new is not None:
                return _own(dict(new))
            hit = self._committed.get(pid)
            if hit is not None and time.monotonic() - hit[0] < _COMMITTED_FOR:
                kept = dict(hit[1])
                kept.update(self._row_updates.get(pid) or ())
                return _own(kept)
            r = self._conn.execute("SELECT * FROM predictions WHERE id = ?", (pid,)).fetchone()
            update = self._row_updates.get(pid)
            update = _own(dict(update)) if update is not None else None
        row = self.decode_prediction(dict(r)) if r is not None else None
        if row is not None and update is not None:
            row.update(update)
        return row

    def query_predictions(
        self, where: str, params: Sequence[Any], order: str, limit: int
    ) -> list[dict[str, Any]]:
        """Decoded prediction rows matching a WHERE clause."""
        rows = self.query(
            f"SELECT * FROM predictions WHERE {where} ORDER BY {order} LIMIT {int(limit)}", params
        )
        return [r for r in (self.decode_prediction(x) for x in rows) if r is not None]

    # ------------------------------------------------------------------ events
    def append_event(
        self,
        pid: str,
        type_: str,
        data: str,
        t: float,
        *,
        defer: bool = False,
        fields: dict[str, Any] | None = None,
    ) -> int:
        """Append an SSE event for a prediction; returns its sequence number. ``defer``:
        commit it with the next commit (see the module's docstring), else now. ``fields``:
        columns of the prediction to update with it (as ``update_prediction``).

        The next sequence number of a prediction with an open stream is remembered (from its
        first event to its ``done``), so that a streaming model's events cost no statement
        each; a number taken meanwhile (another process on the same file) is looked up again.
        """
        with self._lock:
            seq = self._next_seq.pop(pid, None)
            if seq is None:
                self._flush_locked()
                seq = self._max_seq(pid)
            self._new_events.append((pid, seq, type_, data, t))
            self._logs.add(pid, seq, type_, data, t)
            if fields:
                new = self._new_rows.get(pid)
                if new is not None:
                    new.update(fields)
                else:
                    self._row_updates.setdefault(pid, {}).update(fields)
            if type_ != "done":
                if len(self._next_seq) >= _OPEN_STREAMS_REMEMBERED:
                    self._next_seq.clear()
                self._next_seq[pid] = seq + 1
            if defer:
                self._deferred()
                return seq
            self._renumbered.clear()
            self._flush_locked()
            # The number may have been taken meanwhile (another process): the flush numbered
            # the event again after the stored ones (this event is the prediction's last).
            return self._renumbered.pop(pid, seq)

    def _max_seq(self, pid: str) -> int:
        row = self._conn.execute(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE prediction_id = ?", (pid,)
        ).fetchone()
        return int(row[0])

    def events_after(self, pid: str, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Events with a sequence number greater than ``seq``, in order, at most ``limit``
        (a stream reads a long history in batches, never all of it at once)."""
        return [
            {"seq": s, "type": type_, "data": data, "t": t}
            for s, type_, data, t in self.event_rows(pid, seq, limit)
        ]

    def event_rows(
        self, pid: str, seq: int, limit: int = 1000
    ) -> list[tuple[int, str, str, float]]:
        """``events_after`` as tuples ``(seq, type, data, t)``."""
        with self._lock:
            kept = self._logs.after(pid, seq, limit)
            if kept is not None:
                return kept
            rows: list[tuple[int, str, str, float]] = [
                tuple(r)  # type: ignore[misc]
                for r in self._conn.execute(
                    "SELECT seq, type, data, t FROM events WHERE prediction_id = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (pid, seq, limit),
                )
            ]
            if self._new_events and len(rows) < limit:
                rows.extend(
                    (s, type_, data, t)
                    for p, s, type_, data, t in self._new_events
                    if p == pid and s > seq
                )
                del rows[limit:]
        return rows

    def ended_by(self, pid: str, seq: int) -> bool:
        """Whether the ``done`` event of ``pid`` is numbered ``seq`` or below."""
        with self._lock:
            known = self._logs.ended_by(pid, seq)
            if known is not None:
                return known
            return any(
                s <= seq and type_ == "done" for p, s, type_, _, _ in self._new_events if p == pid
            ) or bool(
                self._conn.execute(
                    "SELECT 1 FROM events WHERE prediction_id = ? AND type = 'done' AND seq <= ?",
                    (pid, seq),
                ).fetchone()
            )


#: How many just committed rows are kept, and for how long (seconds): long enough for the
#: answer that follows a commit, short enough that another process's change of such a row
#: (it only ever ends predictions of a server that stopped) cannot matter.
_COMMITTED_KEPT = 256
_COMMITTED_FOR = 1.0


def _own(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its own copy of a list output: a running prediction's output column may
    be the run's own list, which grows with each chunk (``update_prediction``)."""
    output = row.get("output")
    if output.__class__ is list:
        row["output"] = list(output)
    return row


def _known_columns(fields: dict[str, Any]) -> None:
    """ValueError unless every key is a predictions column: a deferred row holds every
    column in order (its values are written as they stand), so an unknown one would spoil
    the commit of every row deferred with it."""
    if not fields.keys() <= _PREDICTION_COLUMNS.keys():
        unknown = ", ".join(sorted(set(fields) - set(_PREDICTION_COLUMNS)))
        raise ValueError(f"not a column of predictions: {unknown}")


def _touches_predictions(sql: str) -> bool:
    """Whether a statement may read or write what deferred writes change (they must be
    committed first); other tables' statements need not wait for them."""
    return "predictions" in sql or "events" in sql


class _Batch:
    """The commit the answers of two turns of the loop wait for (``Store.durable``)."""

    __slots__ = ("error", "loop", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiters: list[asyncio.Future[None]] = []
        self.error: BaseException | None = None


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


def _update_sql(data: dict[str, Any]) -> str:
    sets = ", ".join(f"{k} = :{k}" for k in data)
    return f"UPDATE predictions SET {sets} WHERE id = :_pid"


def _insert_sql(data: dict[str, Any]) -> str:
    key = tuple(data)
    sql = _INSERTS.get(key)
    if sql is None:
        cols = ", ".join(data)
        marks = ", ".join(f":{k}" for k in data)
        sql = _INSERTS[key] = f"INSERT INTO predictions ({cols}) VALUES ({marks})"
    return sql


_INSERTS: dict[tuple[str, ...], str] = {}  # a few shapes: by the columns given

#: Rows per multi-row INSERT of deferred rows (within SQLite's bound-parameter limit, 999
#: before SQLite 3.32).
_ROWS_PER_INSERT = 32 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999 // 25
_ROW_MARKS = "(" + ", ".join("?" * len(_PREDICTION_COLUMNS)) + ")"
_MULTI_INSERTS: dict[int, str] = {}
#: Positions of the JSON columns in a deferred row's values.
_JSON_POSITIONS = tuple(i for i, c in enumerate(_PREDICTION_COLUMNS) if c in Store._JSON_COLS)


def _multi_insert_sql(count: int) -> str:
    sql = _MULTI_INSERTS.get(count)
    if sql is None:
        cols = ", ".join(_PREDICTION_COLUMNS)
        sql = _MULTI_INSERTS[count] = f"INSERT INTO predictions ({cols}) VALUES " + ", ".join(
            [_ROW_MARKS] * count
        )
    return sql


def _encode_flat(values: list[Any]) -> list[Any]:
    """The values of whole rows (``_PREDICTION_COLUMNS`` each) with JSON columns encoded."""
    width = len(_PREDICTION_COLUMNS)
    for start in range(0, len(values), width):
        for i in _JSON_POSITIONS:
            v = values[start + i]
            if v is not None:
                values[start + i] = json_text(v)
    return values
