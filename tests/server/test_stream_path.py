"""The per-stream work of the local server done once: a prediction's events kept in memory
for its streams (the same as those committed), the output column stored with each output
event, a finished prediction's stream answered as one body, stream tokens kept."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest

from replicate.local.server import LocalServer
from replicate.local.store import Store

from .conftest import AUTH
from .helpers import held_stream, prediction_row
from .test_sse import parse_sse


def _row(pid: str) -> dict[str, Any]:
    return prediction_row(pid, stream=1)


def _fill(store: Store, pid: str, n: int) -> None:
    for i in range(n):
        store.append_event(
            pid,
            "output",
            f"t{i}",
            2.0 + i,
            defer=True,
            fields={"output": [f"t{j}" for j in range(i + 1)]},
        )
    store.append_event(pid, "done", "{}", 9.0, defer=True)


def test_events_kept_in_memory_are_those_committed(store: Store, db: str) -> None:
    store.insert_prediction(_row("p1"), defer=True)
    _fill(store, "p1", 5)
    row = store.get_prediction("p1")
    assert row is not None and row["output"] == ["t0", "t1", "t2", "t3", "t4"]
    before = {
        (seq, limit): store.events_after("p1", seq, limit)
        for seq in range(-1, 8)
        for limit in (1, 2, 1000)
    }
    ended = [store.ended_by("p1", seq) for seq in range(-1, 8)]
    assert [e["seq"] for e in before[(-1, 1000)]] == [0, 1, 2, 3, 4, 5]
    assert ended == [False] * 6 + [True] * 3
    store.flush()
    assert store.events_after("p1", -1) == before[(-1, 1000)]  # still from memory
    other = Store(db)  # keeps nothing: reads the table
    try:
        got = other.get_prediction("p1")
        assert got is not None and got["output"] == row["output"]
        for (seq, limit), events in before.items():
            assert other.events_after("p1", seq, limit) == events
        assert [other.ended_by("p1", seq) for seq in range(-1, 8)] == ended
    finally:
        other.close()


def test_kept_events_are_dropped_when_the_table_changes_otherwise(store: Store, db: str) -> None:
    store.insert_prediction(_row("p1"))
    # Another process numbers an event of p1 first: this store's is numbered after it.
    other = sqlite3.connect(db)
    other.execute(
        "INSERT INTO events (prediction_id, seq, type, data, t) VALUES ('p1', 0, 'logs', 'x', 1)"
    )
    other.commit()
    other.close()
    assert store.append_event("p1", "output", "a", 2.0) == 1
    assert [(e["seq"], e["data"]) for e in store.events_after("p1", -1)] == [(0, "x"), (1, "a")]
    # A statement on the events table: what was kept is not used any more.
    store.insert_prediction(_row("p2"), defer=True)
    _fill(store, "p2", 2)
    assert len(store.events_after("p2", -1)) == 3
    store.execute("DELETE FROM events WHERE prediction_id = ?", ("p2",))
    assert store.events_after("p2", -1) == []
    assert not store.ended_by("p2", 5)


def test_a_live_stream_is_chunked_and_the_get_shows_its_output_so_far() -> None:
    with LocalServer() as s, httpx.Client(base_url=s.base_url, headers=AUTH, timeout=30) as c:
        go = held_stream(s, "test/held-stream-path")
        p = c.post(
            "/v1/models/test/held-stream-path/predictions", json={"input": {"text": "a"}}
        ).json()
        lines: list[str] = []
        try:
            with httpx.stream("GET", p["urls"]["stream"]) as r:
                assert "content-length" not in r.headers
                assert r.headers["transfer-encoding"] == "chunked"
                for line in r.iter_lines():
                    lines.append(line)
                    if line == "data: one":
                        # Mid-stream: the prediction's output so far, before any commit.
                        mid = c.get(f"/v1/predictions/{p['id']}").json()
                        assert mid["status"] == "processing" and mid["output"] == ["one"]
                        go.set()
        finally:
            go.set()
        events = parse_sse("\n".join(lines))
        assert [e["data"] for e in events if e["event"] == "output"] == ["one", "two"]
        assert [int(e["id"].split(":")[1]) for e in events] == list(range(len(events)))


def test_a_finished_prediction_s_stream_is_one_body_and_tokens_need_not_be_kept() -> None:
    with LocalServer() as s, httpx.Client(base_url=s.base_url, headers=AUTH, timeout=30) as c:
        p = c.post(
            "/v1/models/local-demo/stream-text/predictions",
            json={"input": {"prompt": "a b", "max_tokens": 3, "delay_ms": 0}},
            headers={"Prefer": "wait"},
        ).json()
        assert p["status"] == "succeeded"
        r = httpx.get(p["urls"]["stream"])
        assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
        events = parse_sse(r.text)
        assert [e["event"] for e in events] == [
            "logs",
            "output",
            "output",
            "output",
            "logs",
            "done",
        ]
        # Resumed after its end: an empty body.
        after = httpx.get(p["urls"]["stream"], headers={"Last-Event-ID": events[-1]["id"]})
        assert after.status_code == 200 and after.content == b""
        # A token is checked as well when it is not kept (another server's, a restart).
        assert s.core is not None
        s.core._stream_tokens.clear()
        assert httpx.get(p["urls"]["stream"]).text == r.text
        bad = p["urls"]["stream"][:-1] + ("1" if p["urls"]["stream"].endswith("0") else "0")
        assert httpx.get(bad).status_code == 404


def test_a_growing_output_list_is_committed_as_it_is_then_and_read_as_a_copy(
    store: Store,
    db: str,
) -> None:
    store.insert_prediction(_row("p1"), defer=True)
    output = ["a"]  # a run's own list, stored once and appended to afterwards
    store.append_event("p1", "output", "a", 2.0, defer=True, fields={"output": output})
    output.append("b")
    first = store.get_prediction("p1")
    assert first is not None and first["output"] == ["a", "b"]
    first["output"].append("not stored")
    output.append("c")
    assert store.get_prediction("p1")["output"] == ["a", "b", "c"]  # type: ignore[index]
    assert first["output"] == ["a", "b", "not stored"]  # a copy: later chunks not in it
    store.flush()
    output.append("d")  # the committed row is kept: reads still copy the latest list
    assert store.get_prediction("p1")["output"] == ["a", "b", "c", "d"]  # type: ignore[index]
    other = sqlite3.connect(db)
    try:
        stored = other.execute("SELECT output FROM predictions WHERE id = 'p1'").fetchone()
    finally:
        other.close()
    assert stored == ('["a", "b", "c"]',)


def test_the_events_kept_in_memory_are_bounded_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``TOTAL_EVENTS_KEPT`` events in all, a log that grows is dropped (its stream reads
    the table instead); dropping or clearing logs gives their room back."""
    from replicate.local import event_log

    monkeypatch.setattr(event_log, "TOTAL_EVENTS_KEPT", 50)
    logs = event_log.EventLogs()
    for p in range(3):
        logs.start(f"p{p}")
    for seq in range(20):
        for p in range(3):
            logs.add(f"p{p}", seq, "output", "x", 1.0)
    # The total was reached with event 16 of p1: p2, growing next, was dropped, and its room
    # let p0 and p1 keep all 20 of theirs.
    assert logs.after("p0", -1, 100) is not None and len(logs.after("p0", -1, 100) or []) == 20
    assert logs.after("p2", -1, 100) is None
    assert logs._count == 40
    logs.drop("p0")
    assert logs._count == 20
    logs.start("p3")
    for seq in range(30):
        logs.add("p3", seq, "output", "y", 1.0)
    assert len(logs.after("p3", -1, 100) or []) == 30 and logs._count == 50
    logs.clear()
    assert logs._count == 0
