"""Prediction lifecycle over real sockets: wait/202, cancel, Cancel-After, failure, validation, lists."""

from __future__ import annotations

import concurrent.futures
import itertools

import httpx
import pytest

from replicate.local.server import LocalServer

from .conftest import AUTH
from .helpers import register_gate, wait_status, wait_until


def test_wait_then_poll_202(server: LocalServer, http: httpx.Client) -> None:
    name, gate = register_gate(server)
    r = http.post(
        f"/v1/models/{name}/predictions",
        json={"input": {"text": "a"}},
        headers={"Prefer": "wait=1"},
    )
    assert r.status_code == 202
    assert r.headers["preference-applied"] == "wait=1"
    p = r.json()
    # Its own model, started at once and held by the gate: the wait ends while it runs.
    assert p["status"] == "processing" and p["started_at"] is not None
    assert r.headers["location"] == p["urls"]["get"]
    assert p["output"] is None
    gate.release()
    done = wait_status(http, p["id"], {"succeeded"})
    assert done["output"] == "done a"
    assert "predict_time" in done["metrics"] and "total_time" in done["metrics"]


def test_sleep_wait_1_gives_202(http: httpx.Client) -> None:
    r = http.post(
        "/v1/models/local-demo/sleep/predictions",
        json={"input": {"seconds": 5, "tick": 0.1}},
        headers={"Prefer": "wait=1"},
    )
    assert r.status_code == 202
    assert r.json()["status"] in ("starting", "processing")
    c = http.post(r.json()["urls"]["cancel"])
    assert c.status_code == 200


def test_invalid_prefer_and_cancel_after(http: httpx.Client) -> None:
    body = {"version": "replicate/hello-world", "input": {"text": "a"}}
    for bad in ("wait=0", "wait=100", "wait=abc", "wait=05"):
        r = http.post("/v1/predictions", json=body, headers={"Prefer": bad})
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/problem+json"
    for bad in ("4s", "soon", "1x"):
        r = http.post("/v1/predictions", json=body, headers={"Cancel-After": bad})
        assert r.status_code == 422, bad


def test_prefer_wait_above_60_is_clamped(http: httpx.Client) -> None:
    body = {"version": "replicate/hello-world", "input": {"text": "a"}}
    r = http.post("/v1/predictions", json=body, headers={"Prefer": "wait=78"})
    assert r.status_code == 201 and r.headers["preference-applied"] == "wait=78"


def test_cancel_queued_then_again(server: LocalServer, http: httpx.Client) -> None:
    name, gate = register_gate(server)
    first = http.post(f"/v1/models/{name}/predictions", json={"input": {"text": "first"}}).json()
    gate.wait_started(1)
    second = http.post(f"/v1/models/{name}/predictions", json={"input": {"text": "second"}}).json()
    assert second["status"] == "starting"
    r = http.post(f"/v1/predictions/{second['id']}/cancel")
    assert r.status_code == 200
    c = r.json()
    assert c["status"] == "canceled"
    assert c["started_at"] == c["completed_at"]
    assert c["metrics"]["predict_time"] == 0
    again = http.post(f"/v1/predictions/{second['id']}/cancel")
    assert again.status_code == 200 and again.json() == c
    gate.release()
    assert wait_status(http, first["id"], {"succeeded"})["output"] == "done first"
    assert gate.started == ["first"]


def test_cancel_processing_keeps_partial_output(http: httpx.Client) -> None:
    p = http.post(
        "/v1/models/local-demo/stream-text/predictions",
        json={"input": {"prompt": "one two three", "max_tokens": 1000, "delay_ms": 20}},
    ).json()
    wait_until(lambda: len(http.get(f"/v1/predictions/{p['id']}").json()["output"] or []) >= 2)
    c = http.post(f"/v1/predictions/{p['id']}/cancel")
    assert c.status_code == 200
    done = wait_status(http, p["id"], {"canceled"})
    assert 2 <= len(done["output"]) < 1000
    assert done["completed_at"] and done["metrics"]["predict_time"] >= 0
    with http.stream("GET", done["urls"]["stream"]) as s:
        text = s.read().decode()
    assert text.rstrip().endswith(
        "event: done\nid: "
        + text.rstrip().split("id: ")[-1].split("\n")[0]
        + '\ndata: {"reason":"canceled"}'
    )


def test_cancel_unknown_404(http: httpx.Client) -> None:
    assert http.post("/v1/predictions/nope/cancel").status_code == 404


def test_cancel_after_aborts_queued_and_cancels_running(
    server: LocalServer, http: httpx.Client
) -> None:
    name, gate = register_gate(server)
    running = http.post(
        f"/v1/models/{name}/predictions",
        json={"input": {"text": "busy"}},
        headers={"Cancel-After": "5s"},
    ).json()
    gate.wait_started(1)
    queued = http.post(
        f"/v1/models/{name}/predictions",
        json={"input": {"text": "late"}},
        headers={"Cancel-After": "5s"},
    ).json()
    assert "deadline" in queued
    server.advance_clock(6)
    a = wait_status(http, queued["id"], {"aborted"})
    assert a["completed_at"] and set(a["metrics"]) == {"total_time"}
    assert "started_at" not in a
    c = wait_status(http, running["id"], {"canceled"})
    assert c["status"] == "canceled"
    assert gate.started == ["busy"]


def test_cancel_after_running_sleep(server: LocalServer, http: httpx.Client) -> None:
    p = http.post(
        "/v1/models/local-demo/sleep/predictions",
        json={"input": {"seconds": 600, "tick": 0.1}},
        headers={"Cancel-After": "1m"},
    ).json()
    wait_status(http, p["id"], {"processing"})
    server.advance_clock(61)
    done = wait_status(http, p["id"], {"canceled"})
    assert done["deadline"]


def test_failing_model(http: httpx.Client) -> None:
    r = http.post(
        "/v1/models/local-demo/fail/predictions",
        json={"input": {"message": "boom"}},
        headers={"Prefer": "wait"},
    )
    assert r.status_code == 201
    p = r.json()
    assert p["status"] == "failed"
    assert p["error"] == "boom"
    assert p["logs"] == "starting\nabout to fail\n"
    assert "predict_time" in p["metrics"]


@pytest.mark.parametrize(
    ("inp", "detail", "fields"),
    [
        (
            {},
            "- input: text is required",
            [{"type": "required", "field": "input", "description": "text is required"}],
        ),
        (
            {"text": "a", "size": "big"},
            "- input.size: Invalid type. Expected: integer, given: string",
            [
                {
                    "type": "invalid_type",
                    "field": "input.size",
                    "description": "Invalid type. Expected: integer, given: string",
                }
            ],
        ),
        (
            {"text": "a", "format": "gif"},
            '- input.format: format must be one of the following: "png", "txt"',
            [
                {
                    "type": "enum",
                    "field": "input.format",
                    "description": 'format must be one of the following: "png", "txt"',
                }
            ],
        ),
        (
            {"text": "a", "size": 0},
            "- input.size: Must be greater than or equal to 1",
            [
                {
                    "type": "number_gte",
                    "field": "input.size",
                    "description": "Must be greater than or equal to 1",
                }
            ],
        ),
        (
            {"text": "a", "size": 513},
            "- input.size: Must be less than or equal to 512",
            [
                {
                    "type": "number_lte",
                    "field": "input.size",
                    "description": "Must be less than or equal to 512",
                }
            ],
        ),
        (
            {"text": "a", "size": True},
            "- input.size: Invalid type. Expected: integer, given: boolean",
            [
                {
                    "type": "invalid_type",
                    "field": "input.size",
                    "description": "Invalid type. Expected: integer, given: boolean",
                }
            ],
        ),
    ],
)
def test_input_validation(fresh: LocalServer, inp: dict, detail: str, fields: list) -> None:
    with httpx.Client(base_url=fresh.base_url, headers=AUTH) as c:
        r = c.post("/v1/models/local-demo/make-file/predictions", json={"input": inp})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() == {
            "title": "Input validation failed",
            "detail": detail,
            "status": 422,
            "invalid_fields": fields,
        }
        assert c.get("/v1/predictions").json()["results"] == []


def test_number_accepts_integer(http: httpx.Client) -> None:
    r = http.post(
        "/v1/models/local-demo/sleep/predictions",
        json={"input": {"seconds": 0, "tick": 1}},
        headers={"Prefer": "wait"},
    )
    assert r.status_code == 201 and r.json()["output"] == "slept 0s"


def test_unknown_version_and_bad_bodies(http: httpx.Client) -> None:
    r = http.post("/v1/predictions", json={"version": "f" * 64, "input": {}})
    assert r.status_code == 422
    assert r.json() == {
        "title": "Invalid version or not permitted",
        "detail": "The specified version does not exist (or perhaps you don't have permission to use it?)",
        "status": 422,
    }
    assert (
        http.post("/v1/predictions", json={"version": "nobody/nothing", "input": {}}).status_code
        == 422
    )
    r = http.post(
        "/v1/predictions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["detail"] == "Request body is not valid JSON"
    r = http.post("/v1/predictions", json={"model": "x"})
    assert r.status_code == 422
    assert (
        r.json()["detail"]
        == "- version is required\n- input is required\n- Additional property model is not allowed"
    )
    assert http.post("/v1/models/nobody/nothing/predictions", json={"input": {}}).status_code == 404


def test_stream_url_only_for_iterators(http: httpx.Client) -> None:
    a = http.post(
        "/v1/models/local-demo/stream-text/predictions",
        json={"input": {"prompt": "x", "max_tokens": 1}},
    ).json()
    assert a["urls"]["stream"].startswith(str(http.base_url).rstrip("/") + "/v1/streams/")
    b = http.post(
        "/v1/models/replicate/hello-world/predictions",
        json={"input": {"text": "x"}, "stream": True},
    ).json()
    assert "stream" not in b["urls"]
    assert b["input"] == {"text": "x"}


def test_pagination_250(fresh: LocalServer) -> None:
    with httpx.Client(base_url=fresh.base_url, headers=AUTH) as c:
        ids = [
            c.post(
                "/v1/predictions",
                json={"version": "replicate/hello-world", "input": {"text": str(i)}},
            ).json()["id"]
            for i in range(250)
        ]
        pages = []
        url: str | None = "/v1/predictions"
        while url:
            page = c.get(url).json()
            pages.append(page)
            url = page["next"]
        assert [len(p["results"]) for p in pages] == [100, 100, 50]
        seen = [p["id"] for page in pages for p in page["results"]]
        assert seen == list(reversed(ids))
        assert pages[0]["previous"] is None
        # walk back with previous links
        back = c.get(pages[2]["previous"]).json()
        assert [p["id"] for p in back["results"]] == [p["id"] for p in pages[1]["results"]]
        back2 = c.get(back["previous"]).json()
        assert [p["id"] for p in back2["results"]] == [p["id"] for p in pages[0]["results"]]
        assert back2["previous"] is None
        # created_after is inclusive, created_before exclusive
        all_rows = [p for page in pages for p in page["results"]]
        pivot = all_rows[120]
        after = [
            p["id"] for p in _walk(c, "/v1/predictions", {"created_after": pivot["created_at"]})
        ]
        before = [
            p["id"] for p in _walk(c, "/v1/predictions", {"created_before": pivot["created_at"]})
        ]
        assert after == [p["id"] for p in all_rows[:121]]
        assert before == [p["id"] for p in all_rows[121:]]
        assert c.get("/v1/predictions", params={"source": "web"}).json() == {
            "next": None,
            "previous": None,
            "results": [],
        }
        assert c.get("/v1/predictions", params={"cursor": "!!!"}).status_code == 400


def _walk(c: httpx.Client, url: str, params: dict) -> list[dict]:
    out: list[dict] = []
    page = c.get(url, params=params).json()
    out += page["results"]
    while page["next"]:
        assert "created_" in page["next"]
        page = c.get(page["next"]).json()
        out += page["results"]
    return out


def test_twenty_concurrent_on_concurrency_one(server: LocalServer) -> None:
    order: list[str] = []
    import threading

    lock = threading.Lock()
    running = [0, 0]

    def fn(text: str) -> str:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
            order.append(text)
        with lock:
            running[0] -= 1
        return text

    name = f"test/conc-{id(fn)}"
    server.register(name, fn, concurrency=1)
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=60) as c:

        def run(i: int) -> dict:
            r = c.post(
                f"/v1/models/{name}/predictions",
                json={"input": {"text": str(i)}},
                headers={"Prefer": "wait"},
            )
            assert r.status_code == 201
            return r.json()

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            results = list(pool.map(run, range(20)))
    assert all(p["status"] == "succeeded" for p in results)
    assert running[1] == 1
    spans = sorted((p["started_at"], p["completed_at"], p["created_at"]) for p in results)
    for a, b in itertools.pairwise(spans):
        assert a[1] <= b[0], "two predictions overlapped in processing"
    by_created = sorted(results, key=lambda p: p["created_at"])
    by_started = sorted(results, key=lambda p: p["started_at"])
    assert [p["id"] for p in by_created] == [p["id"] for p in by_started]


def test_stream_field_echoed_and_stream_urls_always() -> None:
    with (
        LocalServer(stream_urls="always", max_run_time=600) as s,
        httpx.Client(base_url=s.base_url, headers=AUTH) as c,
    ):
        p = c.post(
            "/v1/models/replicate/hello-world/predictions",
            json={"input": {"text": "x"}, "stream": True},
        ).json()
        assert p["stream"] is True
        assert p["urls"]["stream"].startswith(s.base_url + "/v1/streams/")
        assert "deadline" in p
        q = c.post(
            "/v1/models/replicate/hello-world/predictions", json={"input": {"text": "x"}}
        ).json()
        assert "stream" not in q
        text = httpx.get(p["urls"]["stream"]).text
        assert "event: output\nid: " in text and "data: hello x" in text
