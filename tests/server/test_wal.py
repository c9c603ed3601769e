"""WAL checkpoints run in the store's checkpoint thread, not inside the commits; the paths such
later work opens do not follow a change of the process's directory."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from replicate.local.store import Store
from replicate.local.wal import SAFETY_PAGES, Checkpointer

from .helpers import prediction_row


def _frames(db: str) -> int:
    """WAL frames not yet copied into the file, as another connection finds them."""
    other = sqlite3.connect(db)
    try:
        # A checkpoint that copies nothing: it only reports (busy, log frames, copied).
        busy, log, copied = other.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()
    except sqlite3.OperationalError:  # SQLite before 3.40 has no NOOP
        return -1
    finally:
        other.close()
    return int(log) - int(copied) if busy == 0 else -1


def test_commits_leave_the_checkpoint_to_the_checkpoint_thread(tmp_path: Path) -> None:
    db = str(tmp_path / "db.sqlite")
    store = Store(db)
    try:
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == SAFETY_PAGES
        checkpoints = store.checkpoints
        assert checkpoints is not None
        size_before = os.path.getsize(db)
        checkpoints.checkpointed.clear()
        for i in range(300):
            store.insert_prediction(prediction_row(f"p{i}", input={"text": "x" * 200}))
        # The rows were committed (to the WAL); the checkpoint thread copies them soon.
        assert checkpoints.checkpointed.wait(20)
        for _ in range(100):  # the last commits may come after that checkpoint: one more
            if _frames(db) in (0, -1):
                break
            checkpoints.checkpointed.clear()
            assert checkpoints.checkpointed.wait(20)
        assert os.path.getsize(db) > size_before + 300 * 200  # the rows are in the file
        assert len(store.query("SELECT id FROM predictions")) == 300
    finally:
        store.close()
    thread = checkpoints._later._thread
    assert thread is not None and not thread.is_alive()


def test_a_memory_store_has_no_checkpoint_thread() -> None:
    store = Store(":memory:")
    try:
        store.insert_prediction(prediction_row("p1"))
        assert store.checkpoints is None
    finally:
        store.close()


def test_a_closed_checkpointer_starts_no_thread(tmp_path: Path) -> None:
    db = str(tmp_path / "db.sqlite")
    Store(db).close()
    checkpoints = Checkpointer(db, interval=0.0)
    checkpoints.close()
    checkpoints.committed()
    assert checkpoints._later._thread is None and checkpoints.runs == 0


def test_a_relative_path_is_checkpointed_where_it_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint thread opens its connection later: a change of the process's directory
    meanwhile (a model may make one) must not send it to another file."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    store = Store("db.sqlite")
    try:
        monkeypatch.chdir(tmp_path / "b")
        checkpoints = store.checkpoints
        assert checkpoints is not None
        checkpoints.checkpointed.clear()
        store.insert_prediction(prediction_row("p1"))
        assert checkpoints.checkpointed.wait(20)
        assert not (tmp_path / "b" / "db.sqlite").exists()
        assert _frames(str(tmp_path / "a" / "db.sqlite")) in (0, -1)
    finally:
        store.close()


def test_a_relative_database_path_is_made_absolute_with_its_blobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from replicate.local.core import Core, ServerConfig

    monkeypatch.chdir(tmp_path)
    core = Core(ServerConfig(db="state/db.sqlite"))
    try:
        assert core.config.db == str(tmp_path / "state" / "db.sqlite")
        assert core.files.blob_dir == tmp_path / "state" / "blobs"
    finally:
        core.stop(graceful=False)
