"""The per-create work of the local server done once: model threads reused across runs, the
stored row read in the insert, event numbers of an open stream remembered. Same behaviour as
the slow path: every prediction ends, events are numbered 0, 1, 2... without duplicates."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import replicate
from replicate.local.server import LocalServer
from replicate.local.store import Store

from .helpers import prediction_row

MODES = ["sync", "async"]


def _row(pid: str) -> dict[str, Any]:
    return prediction_row(pid, input={"text": "x", "n": [1, None]})


def test_insert_returns_the_row_as_stored() -> None:
    store = Store(":memory:")
    inserted = store.insert_prediction(_row("p1"))
    assert inserted is not None
    assert inserted == store.get_prediction("p1")
    assert inserted["input"] == {"text": "x", "n": [1, None]}
    assert inserted["logs"] == "" and inserted["data_removed"] == 0


def test_events_are_numbered_from_zero_without_gaps_or_duplicates() -> None:
    store = Store(":memory:")
    store.insert_prediction(_row("p1"))
    seqs = [store.append_event("p1", "output", str(i), 1.0) for i in range(5)]
    seqs.append(store.append_event("p1", "done", "{}", 1.0))
    assert seqs == [0, 1, 2, 3, 4, 5]
    # A prediction the store did not insert (restored after a restart) continues its log.
    store.execute(
        "INSERT INTO events (prediction_id, seq, type, data, t) VALUES ('old', 7, 'logs', 'x', 1)"
    )
    assert store.append_event("old", "done", "{}", 1.0) == 8
    rows = store.query("SELECT seq FROM events WHERE prediction_id = 'p1' ORDER BY seq")
    assert [r["seq"] for r in rows] == [0, 1, 2, 3, 4, 5]


def _event_1_taken_by_another_process(store: Store, db: str) -> None:
    """Prediction p1 with event 0 stored by ``store``; then another connection (another
    process) stores event 1 of it."""
    store.insert_prediction(_row("p1"))
    assert store.append_event("p1", "output", "a", 1.0) == 0
    other = sqlite3.connect(db, isolation_level=None)
    other.execute(
        "INSERT INTO events (prediction_id, seq, type, data, t) VALUES ('p1', 1, 'logs', 'x', 1)"
    )
    other.close()


def test_a_number_taken_by_another_connection_is_looked_up_again(store: Store, db: str) -> None:
    _event_1_taken_by_another_process(store, db)
    assert store.append_event("p1", "output", "b", 1.0) == 2
    rows = store.query("SELECT seq, data FROM events WHERE prediction_id = 'p1' ORDER BY seq")
    assert [(r["seq"], r["data"]) for r in rows] == [(0, "a"), (1, "x"), (2, "b")]


@pytest.mark.parametrize("mode", MODES)
def test_one_model_thread_runs_consecutive_predictions(mode: str) -> None:
    threads: list[threading.Thread] = []

    def record(text: str) -> str:
        threads.append(threading.current_thread())
        return f"hello {text}"

    with LocalServer() as server:
        server.register("acme/record", record)
        client = replicate.Client(api_token=server.api_token, base_url=server.base_url)
        if mode == "sync":
            outputs = [client.run("acme/record", input={"text": str(i)}) for i in range(5)]
        else:

            async def runs() -> list[Any]:
                return [
                    await client.async_run("acme/record", input={"text": str(i)}) for i in range(5)
                ]

            outputs = asyncio.run(runs())
        assert outputs == [f"hello {i}" for i in range(5)]
        # Each run came within the idle wait of the previous one: the same thread ran them.
        assert len(threads) == 5 and len({id(t) for t in threads}) == 1
    # Stopping the server lets its idle model thread end.
    threads[0].join(timeout=30)
    assert not threads[0].is_alive()


def test_concurrent_creates_all_end_with_a_reused_thread() -> None:
    seen: list[threading.Thread] = []  # kept alive, so that their ids stay distinct
    lock = threading.Lock()

    def record(text: str) -> str:
        with lock:
            if threading.current_thread() not in seen:
                seen.append(threading.current_thread())
        return text

    with LocalServer() as server:
        server.register("acme/record", record)
        client = replicate.Client(api_token=server.api_token, base_url=server.base_url)

        async def many() -> list[Any]:
            return await asyncio.gather(
                *(client.async_run("acme/record", input={"text": str(i)}) for i in range(40))
            )

        assert sorted(asyncio.run(many())) == sorted(str(i) for i in range(40))
    assert 1 <= len(seen) < 40  # runs were handed over instead of a thread each


# ---------------------------------------------------------------- deferred writes


def _committed(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """What another connection (another process) sees in the file now."""
    other = sqlite3.connect(db)
    try:
        return other.execute(sql, params).fetchall()
    finally:
        other.close()


def test_deferred_writes_are_read_at_once_and_committed_together(tmp_path: Path) -> None:
    db = str(tmp_path / "db.sqlite")
    store = Store(db)
    try:
        row = store.insert_prediction({**_row("p1"), "stream": 1}, defer=True)  # has events
        assert row == {**store.get_prediction("p1"), "input": {"text": "x", "n": [1, None]}}  # type: ignore[dict-item]
        assert row is not None and row["logs"] == "" and row["kind"] == "prediction"
        store.update_prediction("p1", status="processing", started_at=2.0, defer=True)
        assert store.append_event("p1", "output", '"a"', 2.0, defer=True) == 0
        assert store.append_event("p1", "output", '"b"', 2.0, defer=True) == 1
        # This store's reads see the deferred writes; another connection does not yet.
        got = store.get_prediction("p1")
        assert got is not None and got["status"] == "processing" and got["started_at"] == 2.0
        assert [e["data"] for e in store.events_after("p1", 0)] == ['"b"']
        assert _committed(db, "SELECT id FROM predictions") == []
        # A statement on the predictions commits them first (one transaction).
        assert store.query("SELECT status FROM predictions") == [{"status": "processing"}]
        assert _committed(db, "SELECT status FROM predictions") == [("processing",)]
        assert _committed(db, "SELECT seq, data FROM events ORDER BY seq") == [
            (0, '"a"'),
            (1, '"b"'),
        ]
        # A deferred update of a committed row is overlaid on it until committed.
        store.update_prediction("p1", output=["a", "b"], defer=True)
        got = store.get_prediction("p1")
        assert got is not None and got["output"] == ["a", "b"]
        assert _committed(db, "SELECT output FROM predictions") == [(None,)]
        # Statements on other tables do not wait for them.
        store.get_setting("nothing")
        assert _committed(db, "SELECT output FROM predictions") == [(None,)]
    finally:
        store.close()
    # Closing commits what is deferred.
    assert _committed(db, "SELECT output FROM predictions") == [('["a", "b"]',)]


def test_the_flusher_commits_deferred_writes_nobody_reads(store: Store, db: str) -> None:
    store.insert_prediction(_row("p1"), defer=True)
    for _ in range(2000):  # waits on the state, at most ~20 s
        if _committed(db, "SELECT id FROM predictions"):
            break
        threading.Event().wait(0.01)
    assert _committed(db, "SELECT id FROM predictions") == [("p1",)]


def test_a_write_that_cannot_be_committed_is_dropped_and_the_store_goes_on(
    store: Store,
) -> None:
    store.insert_prediction(_row("p1"))
    store.insert_prediction(_row("p1"), defer=True)  # the same id again
    with pytest.raises(sqlite3.IntegrityError):
        store.flush()
    store.flush()  # nothing left to commit
    store.insert_prediction(_row("p2"), defer=True)
    assert [r["id"] for r in store.query("SELECT id FROM predictions ORDER BY id")] == [
        "p1",
        "p2",
    ]


def test_deferred_events_whose_number_was_taken_are_numbered_again(store: Store, db: str) -> None:
    _event_1_taken_by_another_process(store, db)
    store.append_event("p1", "output", "b", 1.0, defer=True)
    store.append_event("p1", "done", "{}", 1.0, defer=True)
    store.flush()
    rows = store.query("SELECT seq, data FROM events WHERE prediction_id = 'p1' ORDER BY seq")
    assert [(r["seq"], r["data"]) for r in rows] == [(0, "a"), (1, "x"), (2, "b"), (3, "{}")]


@pytest.mark.parametrize("inline", [True, False])
def test_an_inline_model_runs_without_a_model_thread(inline: bool) -> None:
    threads: list[str] = []

    def record(text: str) -> str:
        print("ran")
        threads.append(threading.current_thread().name)
        return f"hello {text}"

    with LocalServer() as server:
        server.register("acme/record", record, inline=inline)
        client = replicate.Client(api_token=server.api_token, base_url=server.base_url)
        prediction = client.predictions.create("acme/record", input={"text": "a"}, wait=True)
        assert prediction.status == "succeeded" and prediction.output == "hello a"
        assert prediction.logs == "ran\n"
        assert client.predictions.get(prediction.id).output == "hello a"
        got = client.run("acme/record", input={"text": "b"})
        assert got == "hello b"
    # LocalServer serves from its thread "replicate-local-server": inline runs ran there.
    on_server = [t == "replicate-local-server" for t in threads]
    assert on_server == [inline, inline]


def test_an_inline_async_model_is_a_task_on_the_server_loop_that_cancel_and_hold_reach() -> None:
    threads: list[str] = []
    started = threading.Event()

    async def tokens(n: int, pause: float = 0.0):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        print("begin")
        for i in range(n):
            if pause:
                started.set()
                await asyncio.sleep(pause)
            yield f"t{i}"

    from replicate.local.schema import AsyncConcatenateIterator

    tokens.__annotations__["return"] = AsyncConcatenateIterator[str]
    with LocalServer(test_controls=True, cancel_grace=30) as server:
        server.register("acme/tokens", tokens, inline=True)
        client = replicate.Client(api_token=server.api_token, base_url=server.base_url)
        done = client.predictions.create("acme/tokens", input={"n": 3}, wait=True)
        assert done.status == "succeeded" and done.output == ["t0", "t1", "t2"]
        assert done.logs == "begin\n" and threads == ["replicate-local-server"]
        # A cancel cancels the task at its await (no grace period needed).
        slow = client.predictions.create("acme/tokens", input={"n": 5, "pause": 60})
        assert started.wait(20)
        client.predictions.cancel(slow.id)
        row = server.wait_for_status(slow.id, timeout=20)
        assert row["status"] == "canceled"
        # A hold pauses it before its next chunk without blocking the server.
        started.clear()
        held = client.predictions.create("acme/tokens", input={"n": 3, "pause": 0.01})
        assert started.wait(20)
        server.hold(held.id)
        assert client.predictions.get(held.id).status == "processing"
        assert client.run("replicate/hello-world", input={"text": "meanwhile"}) == (
            "hello meanwhile"
        )
        # Held: it does not finish however long it waits (here: 0.3 s, ten of its pauses).
        assert not threading.Event().wait(0.3)
        paused = client.predictions.get(held.id)
        assert paused.status == "processing" and len(paused.output or []) < 3
        server.release(held.id)
        assert server.wait_for_status(held.id, timeout=20)["output"] == ["t0", "t1", "t2"]


def test_an_inline_model_cannot_take_files() -> None:
    def reads(image: Path) -> str:
        return image.name

    with LocalServer() as server, pytest.raises(ValueError, match="inline model cannot take file"):
        server.register("acme/reads", reads, inline=True)


def test_a_row_just_committed_is_read_without_a_query_until_another_write(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path / "db.sqlite"))
    statements: list[str] = []
    try:
        store.insert_prediction(_row("p1"), defer=True)
        store.update_prediction("p1", status="succeeded", output="done")  # commits both
        store._conn.set_trace_callback(statements.append)
        got = store.get_prediction("p1")
        assert got is not None and got["status"] == "succeeded" and got["output"] == "done"
        assert statements == []
        store.update_prediction("p1", logs="more\n")  # through the store: kept up to date
        got = store.get_prediction("p1")
        assert got is not None and got["logs"] == "more\n"
        store.execute("UPDATE predictions SET status = 'failed' WHERE id = 'p1'")
        got = store.get_prediction("p1")  # any other write: read again
        assert got is not None and got["status"] == "failed" and got["logs"] == "more\n"
        assert any(s.startswith("SELECT * FROM predictions") for s in statements)
    finally:
        store._conn.set_trace_callback(None)
        store.close()


@pytest.mark.parametrize("mode", MODES)
def test_every_answer_tells_of_a_committed_prediction(tmp_path: Path, mode: str) -> None:
    """Inline runs are committed in groups (one transaction for the creates of two turns of
    the loop): an answer still never tells of a prediction another process cannot read."""
    db = str(tmp_path / "db.sqlite")
    with LocalServer(db=db) as server:
        client = replicate.Client(api_token=server.api_token, base_url=server.base_url)

        def check(prediction: Any) -> None:
            assert prediction.status == "succeeded"
            assert _committed(
                db, "SELECT status FROM predictions WHERE id = ?", (prediction.id,)
            ) == [("succeeded",)]

        if mode == "sync":
            for i in range(10):
                check(
                    client.predictions.create(
                        "replicate/hello-world", input={"text": str(i)}, wait=True
                    )
                )
                check(client.predictions.get(client.predictions.list().results[0].id))
        else:

            async def many() -> None:
                creates = [
                    client.predictions.async_create(
                        "replicate/hello-world", input={"text": str(i)}, wait=True
                    )
                    for i in range(40)
                ]
                for done in asyncio.as_completed(creates):
                    check(await done)

            asyncio.run(many())


@pytest.mark.parametrize("defer", [True, False])
def test_predictions_without_a_stream_leave_nothing_behind_in_memory(
    store: Store, defer: bool
) -> None:
    """A server answers millions of predictions without a stream: none of them may leave an
    entry in the store's memory (event numbers, event logs) once it is committed."""
    for i in range(5000):
        store.insert_prediction({**_row(f"p{i}"), "stream": 0}, defer=defer)
        store.update_prediction(f"p{i}", status="succeeded", output="x", defer=defer)
    store.flush()
    assert len(store._next_seq) == 0
    # One with a stream numbers its events from 0 without a query.
    store.insert_prediction({**_row("s1"), "stream": 1}, defer=defer)
    assert store.append_event("s1", "output", "a", 1.0, defer=defer) == 0
    assert store.append_event("s1", "done", "{}", 1.0) == 1
    # And one without a stream that gets an event after all finds its number.
    assert store.append_event("p7", "logs", "late", 1.0) == 0
    assert store.append_event("p7", "done", "{}", 1.0) == 1


@pytest.mark.parametrize("defer", [True, False])
def test_an_unknown_column_is_refused_before_it_can_spoil_a_commit(
    store: Store, defer: bool
) -> None:
    store.insert_prediction(_row("p1"), defer=True)
    with pytest.raises(ValueError, match="not a column of predictions: colour"):
        store.insert_prediction({**_row("p2"), "colour": "red"}, defer=defer)
    with pytest.raises(ValueError, match="not a column of predictions: size"):
        store.update_prediction("p1", defer=defer, status="succeeded", size=3)
    store.flush()  # what was deferred before is committed as it was
    assert [r["id"] for r in store.query("SELECT id FROM predictions")] == ["p1"]
    assert store.get_prediction("p1")["status"] == "starting"  # type: ignore[index]
