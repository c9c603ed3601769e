"""SSE at urls.stream: framing, ids, resume with Last-Event-ID, keep-alive, replay, errors."""

from __future__ import annotations

import threading

import httpx

from replicate.local.server import LocalServer

from .conftest import AUTH
from .helpers import held_stream, wait_status


def parse_sse(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip() or block.startswith(":"):
            continue
        ev: dict = {"data": []}
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "data":
                ev["data"].append(value)
            else:
                ev[field] = value
        ev["data"] = "\n".join(ev["data"])
        events.append(ev)
    return events


def test_stream_tokens(http: httpx.Client) -> None:
    p = http.post(
        "/v1/models/local-demo/stream-text/predictions",
        json={"input": {"prompt": "the quick fox", "max_tokens": 7, "delay_ms": 1}},
    ).json()
    with http.stream("GET", p["urls"]["stream"], headers={"Accept": "text/event-stream"}) as s:
        assert s.status_code == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        assert s.headers["cache-control"] == "no-store"
        events = parse_sse(s.read().decode())
    final = wait_status(http, p["id"], {"succeeded"})
    outputs = [e["data"] for e in events if e["event"] == "output"]
    assert "".join(outputs) == "".join(final["output"]) == "the quick fox the quick fox the"
    assert [e["data"] for e in events if e["event"] == "logs"] == [
        "streaming 7 tokens",
        "done streaming",
    ]
    seqs = [int(e["id"].split(":")[1]) for e in events]
    assert seqs == list(range(len(events)))
    assert all(e["id"].split(":")[0].isdigit() for e in events)
    assert events[-1] == {"event": "done", "id": events[-1]["id"], "data": "{}"}


def test_stream_without_auth_and_replay_after_completion(http: httpx.Client) -> None:
    p = http.post(
        "/v1/models/local-demo/stream-text/predictions",
        json={"input": {"prompt": "a b", "max_tokens": 3, "delay_ms": 0}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["status"] == "succeeded"
    r1 = httpx.get(p["urls"]["stream"])
    r2 = httpx.get(p["urls"]["stream"])
    assert r1.status_code == 200 and r1.text == r2.text
    assert parse_sse(r1.text)[-1]["event"] == "done"
    url = p["urls"]["stream"]
    assert httpx.get(url[:-1] + ("1" if url.endswith("0") else "0")).status_code == 404


def test_resume_after_drop(server: LocalServer, http: httpx.Client) -> None:
    p = http.post(
        "/v1/models/local-demo/stream-text/predictions",
        json={"input": {"prompt": "w x y z", "max_tokens": 10, "delay_ms": 1}},
    ).json()
    http.post("/_local/faults", json={"sse_drop_after": 3, "times": 1, "path": "/v1/streams/*"})
    first = parse_sse(httpx.get(p["urls"]["stream"]).text)
    assert len(first) == 3 and all(e["event"] != "done" for e in first)
    rest = parse_sse(
        httpx.get(p["urls"]["stream"], headers={"Last-Event-ID": first[-1]["id"]}).text
    )
    combined = first + rest
    assert [int(e["id"].split(":")[1]) for e in combined] == list(range(len(combined)))
    assert combined[-1]["event"] == "done"
    full = parse_sse(httpx.get(p["urls"]["stream"]).text)
    assert [e["id"] for e in full] == [e["id"] for e in combined]
    # query-parameter form, and a malformed id replays everything
    q = parse_sse(httpx.get(p["urls"]["stream"], params={"last_event_id": first[1]["id"]}).text)
    assert q == full[2:]
    assert (
        parse_sse(httpx.get(p["urls"]["stream"], headers={"Last-Event-ID": "garbage"}).text) == full
    )


def test_keepalive_and_held_stream() -> None:
    with LocalServer(keepalive=0.05) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as c:
        go = held_stream(s, "test/held-stream")
        p = c.post("/v1/models/test/held-stream/predictions", json={"input": {"text": "a"}}).json()
        chunks: list[str] = []
        with httpx.stream("GET", p["urls"]["stream"]) as r:
            for line in r.iter_lines():
                chunks.append(line)
                if line == ": keep-alive":
                    go.set()
                if line.startswith("event: done"):
                    break
        assert ": keep-alive" in chunks
        body = "\n".join(chunks)
        assert "data: one" in body and "data: two" in body


def test_failed_stream_ends_with_error_then_done(server: LocalServer, http: httpx.Client) -> None:
    from replicate.local.schema import ConcatenateIterator

    def broken(text: str):  # type: ignore[no-untyped-def]
        yield "partial"
        raise ValueError("exploded")

    broken.__annotations__["return"] = ConcatenateIterator[str]
    server.register("test/broken-stream", broken)
    b = http.post(
        "/v1/models/test/broken-stream/predictions",
        json={"input": {"text": "a"}},
        headers={"Prefer": "wait"},
    ).json()
    assert b["status"] == "failed" and b["error"] == "exploded" and b["output"] == ["partial"]
    events = parse_sse(httpx.get(b["urls"]["stream"]).text)
    assert [e["event"] for e in events] == ["output", "error", "done"]
    assert events[1]["data"] == '{"detail":"exploded"}'
    assert events[2]["data"] == '{"reason":"error"}'


def test_stream_404_after_data_removal(fresh: LocalServer) -> None:
    with httpx.Client(base_url=fresh.base_url, headers=AUTH) as c:
        p = c.post(
            "/v1/models/local-demo/stream-text/predictions",
            json={"input": {"prompt": "x", "max_tokens": 2, "delay_ms": 0}},
            headers={"Prefer": "wait"},
        ).json()
        assert httpx.get(p["urls"]["stream"]).status_code == 200
        fresh.advance_clock("2h")
        removed = c.get(f"/v1/predictions/{p['id']}").json()
        assert (
            removed["data_removed"] is True
            and removed["output"] is None
            and removed["input"] == {}
            and removed["logs"] == ""
        )
        assert removed["status"] == "succeeded" and "stream" not in removed["urls"]
        r = httpx.get(p["urls"]["stream"])
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_generator_without_iterator_schema_streams_once() -> None:
    def gen(text: str):  # type: ignore[no-untyped-def]  # no return annotation: not an iterator schema
        yield "a"
        yield "b"

    # Without urls.stream no one can read a prediction's events: none are stored.
    for stream_urls, expected in (
        ("iterator", []),
        ("always", [("output", "a"), ("output", "b"), ("done", "{}")]),
    ):
        with (
            LocalServer(stream_urls=stream_urls) as s,
            httpx.Client(base_url=s.base_url, headers=AUTH) as c,
        ):
            s.register("test/untyped-gen", gen)
            p = c.post(
                "/v1/models/test/untyped-gen/predictions",
                json={"input": {"text": "x"}},
                headers={"Prefer": "wait"},
            ).json()
            assert p["output"] == ["a", "b"]
            assert ("stream" in p["urls"]) is (stream_urls == "always")
            rows = s.core.store.events_after(p["id"], -1)  # type: ignore[union-attr]
            assert [(e["type"], e["data"]) for e in rows] == expected


def test_a_stream_whose_client_went_away_ends_while_the_prediction_runs(
    fresh: LocalServer,
) -> None:
    server = fresh
    http = httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30)
    gate = held_stream(server, "test/slow-stream", "first", "last")
    p = http.post("/v1/models/test/slow-stream/predictions", json={"input": {"text": "x"}}).json()
    hub = server.core.hub  # type: ignore[union-attr]
    with http.stream("GET", p["urls"]["stream"]) as s:
        chunks = s.iter_text()  # kept: leaving a loop over it would close the connection
        text = ""
        while "first" not in text:
            text += next(chunks)
        # The stream waits for the next event, watched by the hub.
        for _ in range(2000):
            if p["id"] in hub._waiters:
                break
            threading.Event().wait(0.01)
        assert p["id"] in hub._waiters
    # The client went away: the stream stops waiting although the prediction still runs.
    for _ in range(2000):
        if p["id"] not in hub._waiters:
            break
        threading.Event().wait(0.01)
    assert p["id"] not in hub._waiters
    assert http.get(f"/v1/predictions/{p['id']}").json()["status"] == "processing"
    gate.set()
    assert wait_status(http, p["id"], {"succeeded"})["output"] == ["first", "last"]
    http.close()
