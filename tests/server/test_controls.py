"""Test controls (docs/local-server.md, "Test controls") over real sockets, driven through the replicate client where it matters.

Faults (429/5xx/drop/hang/SSE drop/failing webhook receivers), lifecycle controls, scripted
outcomes, limits, the request log, webhook delivery log and reset. Every wait is on a state or
an event, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

import replicate
from replicate.exceptions import (
    APIConnectionError,
    APITimeoutError,
    ModelError,
    ReplicateError,
)
from replicate.local.schema import ConcatenateIterator
from replicate.local.server import LocalServer

from .helpers import Receiver, unique, verify_signature, wait_until

TOKEN = "r8_secret_token_for_controls_test"


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True, token=TOKEN) as s:
        yield s


@pytest.fixture(autouse=True)
def _clean(srv: LocalServer) -> Iterator[None]:
    srv.reset()
    yield
    srv.reset()


@pytest.fixture
def ctl(srv: LocalServer) -> Iterator[httpx.Client]:
    """Raw client for the /_local routes (and /v1 with the token)."""
    with httpx.Client(
        base_url=srv.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as c:
        yield c


def client(srv: LocalServer, **kwargs: Any) -> replicate.Client:
    return replicate.Client(api_token=TOKEN, base_url=srv.base_url, **kwargs)


MODES = ["sync", "async"]


def api(
    mode: str,
    srv: LocalServer,
    sync: Callable[[replicate.Client], Any],
    async_: Callable[[replicate.Client], Awaitable[Any]],
    **client_kwargs: Any,
) -> Any:
    """One client call, sync or async (a fresh client per call: one event loop each)."""
    if mode == "sync":
        return sync(client(srv, **client_kwargs))

    async def go() -> Any:
        return await async_(client(srv, **client_kwargs))

    return asyncio.run(go())


def log_for(srv: LocalServer, path: str, method: str | None = None) -> list[dict[str, Any]]:
    return [
        e for e in srv.requests() if e["path"] == path and (method is None or e["method"] == method)
    ]


def echo(text: str) -> str:
    return f"echo {text}"


def tokens_gen(text: str) -> Iterator[str]:
    yield from text.split()


tokens_gen.__annotations__["return"] = ConcatenateIterator[str]


@pytest.fixture
def echo_model(srv: LocalServer) -> str:
    name = unique("ctl")
    srv.register(name, echo)
    return name


@pytest.fixture
def stream_model(srv: LocalServer) -> str:
    name = unique("ctl")
    srv.register(name, tokens_gen)
    return name


# ---------------------------------------------------------------------------- off by default


def test_controls_are_404_unless_enabled() -> None:
    with LocalServer() as s, httpx.Client(base_url=s.base_url) as c:
        assert c.get("/_local/health").status_code == 200
        for method, path in [
            ("GET", "/_local/faults"),
            ("POST", "/_local/faults"),
            ("DELETE", "/_local/faults/1"),
            ("GET", "/_local/limits"),
            ("POST", "/_local/limits"),
            ("GET", "/_local/requests"),
            ("GET", "/_local/webhooks/deliveries"),
            ("POST", "/_local/predictions/abc/hold"),
            ("POST", "/_local/models/a/b/script"),
            ("POST", "/_local/clock"),
            ("POST", "/_local/reset"),
        ]:
            r = c.request(method, path, json={})
            assert r.status_code == 404, (method, path)
        # and a webhook fault hook does nothing when controls are off
        assert s.core is not None and s.core.webhooks.fault_hook is not None
        assert s.core.webhooks.fault_hook("http://127.0.0.1/hook") is None


# ---------------------------------------------------------------------------- HTTP faults


@pytest.mark.parametrize("mode", MODES)
def test_injected_429_is_retried_after_retry_after_and_the_log_shows_the_waits(
    srv: LocalServer, mode: str
) -> None:
    srv.add_fault(path="/v1/account", status=429, retry_after=1, times=2)
    account = api(mode, srv, lambda c: c.accounts.current(), lambda c: c.accounts.async_current())
    assert account.username == "local"
    log = log_for(srv, "/v1/account")
    assert [e["status"] for e in log] == [429, 429, 200]
    assert log[0]["fault"] == log[1]["fault"] and "fault" not in log[2]
    # the client waited Retry-After (1 s) before each retry: visible in the request log
    assert log[1]["time"] - log[0]["time"] >= 0.95
    assert log[2]["time"] - log[1]["time"] >= 0.95
    assert srv.faults.list() == []  # the budget is used up


def test_429_body_and_headers(ctl: httpx.Client, srv: LocalServer) -> None:
    ctl.post("/_local/faults", json={"path": "/v1/hardware", "status": 429, "retry_after": 7})
    r = ctl.get("/v1/hardware")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["retry_after"] == 7
    r = ctl.get("/v1/hardware")  # no budget: stays until cleared
    assert r.status_code == 429
    assert ctl.delete("/_local/faults").status_code == 204
    assert ctl.get("/v1/hardware").status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_503_is_retried_on_get_but_a_create_post_is_not_resent(
    srv: LocalServer, echo_model: str, mode: str
) -> None:
    kw: dict[str, Any] = {"retry": {"max_attempts": 3}}
    srv.add_fault(operation="models.get", status=503, times=1)
    model = api(
        mode,
        srv,
        lambda c: c.models.get(echo_model),
        lambda c: c.models.async_get(echo_model),
        **kw,
    )
    assert model.name == echo_model.split("/")[1]
    assert [e["status"] for e in log_for(srv, f"/v1/models/{echo_model}")] == [503, 200]

    srv.add_fault(operation="models.predictions.create", status=503, times=1)
    inp = {"text": "x"}
    with pytest.raises(ReplicateError) as info:
        api(
            mode,
            srv,
            lambda c: c.predictions.create(model=echo_model, input=inp),
            lambda c: c.predictions.async_create(model=echo_model, input=inp),
            **kw,
        )
    assert info.value.status == 503
    posts = log_for(srv, f"/v1/models/{echo_model}/predictions", "POST")
    assert [e["status"] for e in posts] == [503]  # the client did not re-POST


@pytest.mark.parametrize("mode", MODES)
def test_dropped_connection_is_retried_on_get_not_on_create(
    srv: LocalServer, echo_model: str, mode: str
) -> None:
    srv.add_fault(path=f"/v1/models/{echo_model}", method="GET", drop=True, times=1)
    model = api(
        mode, srv, lambda c: c.models.get(echo_model), lambda c: c.models.async_get(echo_model)
    )
    assert model.owner == echo_model.split("/")[0]
    gets = log_for(srv, f"/v1/models/{echo_model}", "GET")
    assert [e["status"] for e in gets] == [None, 200]  # no reply at all, then the retry
    assert gets[0]["fault"]

    srv.add_fault(operation="models.predictions.create", drop=True, times=1)
    inp = {"text": "x"}
    with pytest.raises(APIConnectionError):
        api(
            mode,
            srv,
            lambda c: c.predictions.create(model=echo_model, input=inp),
            lambda c: c.predictions.async_create(model=echo_model, input=inp),
        )
    posts = log_for(srv, f"/v1/models/{echo_model}/predictions", "POST")
    assert [e["status"] for e in posts] == [None]
    assert srv.core is not None
    assert srv.core.store.query("SELECT id FROM predictions WHERE model = ?", (echo_model,)) == []


def test_dropped_connection_has_no_response_at_all(ctl: httpx.Client) -> None:
    ctl.post("/_local/faults", json={"path": "/v1/hardware", "drop": True, "times": 1})
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        ctl.get("/v1/hardware")
    assert ctl.get("/v1/hardware").status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_hung_connection_triggers_the_client_read_timeout(srv: LocalServer, mode: str) -> None:
    c = client(srv, timeout=httpx.Timeout(5, read=0.3), retry=False)
    srv.add_fault(path="/v1/account", hang=True, times=1)
    with pytest.raises(APITimeoutError):
        api(
            mode,
            srv,
            lambda c: c.accounts.current(),
            lambda c: c.accounts.async_current(),
            timeout=httpx.Timeout(5, read=0.3),
            retry=False,
        )
    entry = wait_until(lambda: [e for e in log_for(srv, "/v1/account") if e["duration"]])[0]
    assert entry["status"] is None  # hung until the client gave up: no answer was sent
    assert c.accounts.current().username == "local"  # the budget was one request


def test_hang_with_retries_then_success(srv: LocalServer) -> None:
    c = client(srv, timeout=httpx.Timeout(5, read=0.3))
    srv.add_fault(path="/v1/hardware", hang=True, times=1)
    assert next(h.sku for h in c.hardware.list()) == "cpu"
    statuses = [e["status"] for e in log_for(srv, "/v1/hardware")]
    assert statuses == [None, 200] or statuses == [200, None]  # the hung one may log last


def test_delay_matchers_and_budgets(ctl: httpx.Client, srv: LocalServer) -> None:
    f = ctl.post("/_local/faults", json={"operation": "hardware.list", "delay_ms": 1}).json()
    assert f["kind"] == "http" and f["id"] >= 1
    assert ctl.get("/v1/hardware").status_code == 200
    assert [x["hits"] for x in ctl.get("/_local/faults").json()] == [1]
    assert ctl.delete(f"/_local/faults/{f['id']}").status_code == 204
    assert ctl.delete(f"/_local/faults/{f['id']}").status_code == 404
    # probability 0 never applies; an `until` in the past has expired
    ctl.post("/_local/faults", json={"path": "/v1/hardware", "status": 500, "probability": 0})
    ctl.post(
        "/_local/faults",
        json={"path": "/v1/hardware", "status": 500, "until": "2000-01-01T00:00:00Z"},
    )
    assert ctl.get("/v1/hardware").status_code == 200
    assert [x["probability"] for x in ctl.get("/_local/faults").json()] == [0]
    # method mismatch does not match; operation names are checked
    ctl.post("/_local/faults", json={"path": "/v1/hardware", "method": "POST", "status": 502})
    assert ctl.get("/v1/hardware").status_code == 200
    r = ctl.post("/_local/faults", json={"operation": "nope.get", "status": 500})
    assert r.status_code == 422 and "operation" in r.json()["detail"]
    r = ctl.post("/_local/faults", json={"path": "/v1/*"})
    assert r.status_code == 422 and "action" in r.json()["detail"]
    r = ctl.post("/_local/faults", json={"path": "/v1/*", "status": 500, "bogus": 1})
    assert r.status_code == 422
    # a 500 is problem+json; an `until` in the future applies
    ctl.post("/_local/faults", json={"path": "/v1/account", "status": 500, "until": 4102444800})
    r = ctl.get("/v1/account")
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem")


# ---------------------------------------------------------------------------- SSE faults


@pytest.mark.parametrize("mode", MODES)
def test_sse_dropped_after_k_events_is_resumed_by_the_client_stream(
    srv: LocalServer, stream_model: str, mode: str
) -> None:
    srv.script(stream_model, {"manual": True})
    c = client(srv)
    p = c.predictions.create(model=stream_model, input={"text": "x"})
    srv.wait_for_status(p.id, "processing")
    chunks = [f"t{i} " for i in range(6)]
    for chunk in chunks:
        srv.emit(p.id, chunk)
    srv.complete(p.id)
    srv.add_fault(path="/v1/streams/*", sse_drop_after=2, times=1)
    if mode == "sync":
        events = list(p.stream())
    else:

        async def collect() -> list[Any]:
            return [e async for e in p.async_stream()]

        events = asyncio.run(collect())
    outputs = [str(e) for e in events if e.event.value == "output"]
    assert outputs == chunks  # no loss, no duplicates
    assert events[-1].event.value == "done"
    gets = [e for e in srv.requests() if e["path"].startswith("/v1/streams/")]
    assert len(gets) == 2
    assert "last-event-id" not in gets[0]["headers"]
    assert gets[1]["headers"]["last-event-id"].endswith(":1")


def test_emit_makes_output_events_arrive_one_by_one(srv: LocalServer, stream_model: str) -> None:
    srv.script(stream_model, {"manual": True})
    c = client(srv)
    p = c.predictions.create(model=stream_model, input={"text": "x"})
    srv.wait_for_status(p.id, "processing")
    got: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        try:
            for e in p.stream():
                got.put((e.event.value, str(e) if e.event.value == "output" else e.data))
        except BaseException as exc:  # pragma: no cover - surfaced below
            got.put(("exception", repr(exc)))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    for word in ["Hello", " local", " world"]:
        srv.emit(p.id, word)
        assert got.get(timeout=15) == ("output", word)
        assert got.empty()  # nothing else arrived before the next emit
    srv.emit(p.id, log="a log line")
    assert got.get(timeout=15) == ("logs", "a log line")
    srv.complete(p.id)
    assert got.get(timeout=15)[0] == "done"
    t.join(15)
    p.reload()
    assert p.status == "succeeded" and p.output == ["Hello", " local", " world"]
    assert p.logs == "a log line\n"


# ---------------------------------------------------------------------------- lifecycle


def test_held_prediction_is_seen_processing_then_released(srv: LocalServer) -> None:
    returned = threading.Event()
    go = threading.Event()

    def model(text: str) -> str:
        go.wait(15)
        returned.set()
        return text.upper()

    name = unique("ctl")
    srv.register(name, model)
    c = client(srv)
    p = c.predictions.create(model=name, input={"text": "hi"})
    srv.wait_for_status(p.id, "processing")
    srv.hold(p.id)
    go.set()
    assert returned.wait(15)  # the model is done, but the prediction is held before its end
    p.reload()
    assert p.status == "processing" and p.output is None
    srv.release(p.id)
    p.wait()
    assert p.status == "succeeded" and p.output == "HI"


def test_scripted_hold_keeps_a_prediction_queued(ctl: httpx.Client, srv: LocalServer) -> None:
    name = unique("ctl")
    srv.register(name, echo)
    r = ctl.post(f"/_local/models/{name}/script", json={"outcomes": [{"hold": True}]})
    assert r.status_code == 201 and r.json()["pending"][0]["hold"] is True
    c = client(srv)
    held = c.predictions.create(model=name, input={"text": "a"})
    other = c.predictions.create(model=name, input={"text": "b"})
    other.wait()  # a held prediction does not block the queue behind it
    assert other.output == "echo b"
    held.reload()
    assert held.status == "starting"
    r = ctl.post(f"/_local/predictions/{held.id}/release")
    assert r.status_code == 200
    held.wait()
    assert held.status == "succeeded" and held.output == "echo a"
    assert ctl.get(f"/_local/models/{name}/script").json()["pending"] == []


def test_lifecycle_complete_fail_abort_over_http(ctl: httpx.Client, srv: LocalServer) -> None:
    name = unique("ctl")
    srv.register(name, echo)
    srv.script(name, {"manual": True}, {"manual": True}, {"hold": True}, {"hold": True})

    def create() -> str:
        return str(
            ctl.post(f"/v1/models/{name}/predictions", json={"input": {"text": "x"}}).json()["id"]
        )

    a, b, q1, q2 = create(), create(), create(), create()
    srv.wait_for_status(a, "processing")
    r = ctl.post(f"/_local/predictions/{a}/emit", json={"output": {"k": 1}, "log": "step"})
    assert (
        r.status_code == 200 and r.json()["output"] == [{"k": 1}] and r.json()["logs"] == "step\n"
    )
    r = ctl.post(f"/_local/predictions/{a}/complete", json={"output": {"answer": 42}})
    assert r.status_code == 200
    assert r.json()["status"] == "succeeded" and r.json()["output"] == {"answer": 42}
    srv.wait_for_status(b, "processing")
    r = ctl.post(f"/_local/predictions/{b}/fail", json={"error": "scripted boom"})
    assert r.json()["status"] == "failed" and r.json()["error"] == "scripted boom"
    # q1 is held in the queue: abort ends it; emit before start is a conflict
    assert ctl.post(f"/_local/predictions/{q1}/emit", json={"output": "x"}).status_code == 409
    r = ctl.post(f"/_local/predictions/{q1}/abort")
    assert r.json()["status"] == "aborted" and "started_at" not in r.json()
    # q2 held in the queue: complete starts and finishes it
    r = ctl.post(f"/_local/predictions/{q2}/complete", json={"output": "done"})
    body = r.json()
    assert body["status"] == "succeeded" and body["output"] == "done" and body["started_at"]
    assert body["metrics"]["predict_time"] >= 0
    # terminal, unknown, bad action
    assert ctl.post(f"/_local/predictions/{a}/fail").status_code == 409
    assert ctl.post(f"/_local/predictions/{a}/hold").status_code == 409
    assert ctl.post("/_local/predictions/nope/hold").status_code == 404
    assert ctl.post(f"/_local/predictions/{a}/explode").status_code == 404
    assert ctl.post(f"/_local/predictions/{a}/emit", json=[1]).status_code == 422


def test_abort_of_a_running_prediction_is_a_conflict(srv: LocalServer, echo_model: str) -> None:
    srv.script(echo_model, {"manual": True})
    p = client(srv).predictions.create(model=echo_model, input={"text": "x"})
    srv.wait_for_status(p.id, "processing")
    with pytest.raises(ValueError, match="has not started"):
        srv.abort(p.id)
    p.cancel()
    assert srv.wait_for_status(p.id)["status"] == "canceled"


# ---------------------------------------------------------------------------- scripted outcomes


def test_scripted_outcomes_fail_then_return_then_run_the_model(
    srv: LocalServer, echo_model: str
) -> None:
    srv.script(echo_model, {"error": "scripted failure", "logs": ["one", "two"]}, {"output": "Y"})
    c = client(srv)
    with pytest.raises(ModelError) as info:
        c.run(echo_model, input={"text": "a"})
    assert info.value.prediction.error == "scripted failure"
    assert info.value.prediction.logs == "one\ntwo\n"
    assert c.run(echo_model, input={"text": "b"}) == "Y"
    assert c.run(echo_model, input={"text": "c"}) == "echo c"


def test_scripted_iterator_output_streams_chunk_by_chunk(
    srv: LocalServer, stream_model: str
) -> None:
    srv.script(stream_model, {"output": ["a", "b", "c"]})
    c = client(srv)
    p = c.predictions.create(model=stream_model, input={"text": "real model words"})
    assert [str(e) for e in p.stream() if e.event.value == "output"] == ["a", "b", "c"]


def test_script_validation(ctl: httpx.Client, echo_model: str) -> None:
    url = f"/_local/models/{echo_model}/script"
    assert ctl.post("/_local/models/no/such-model/script", json=[{"output": 1}]).status_code == 404
    for bad in ([], [{"nope": 1}], [{"output": 1, "error": "x"}], [{"manual": True, "output": 1}]):
        r = ctl.post(url, json=bad)
        assert r.status_code == 422, bad
    assert ctl.post(url, json={"output": 1}).status_code == 201
    assert ctl.delete(url).status_code == 204
    assert ctl.get(url).json()["pending"] == []


# ---------------------------------------------------------------------------- webhooks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize(
    "fault",
    [{"webhook_fail": 500}, {"webhook_drop": True}, {"webhook_hang": True, "hang_ms": 20}],
    ids=["fail", "drop", "hang"],
)
def test_failing_webhook_receiver_gets_retries_with_the_same_webhook_id(
    srv: LocalServer, receiver: Receiver, echo_model: str, fault: dict[str, Any]
) -> None:
    srv.set_limits(webhook_backoff_scale=0.01)
    srv.add_fault(path="/hook", times=2, **fault)
    c = client(srv)
    p = c.predictions.create(
        model=echo_model,
        input={"text": "x"},
        webhook=receiver.url,
        webhook_events_filter=["completed"],
    )
    got = receiver.wait_for(lambda reqs: len(reqs) >= 1)
    assert len(got) == 1 and got[0]["json"]["status"] == "succeeded"
    # the attempt is recorded once the receiver's reply is read
    attempts = wait_until(lambda: (a := srv.webhook_deliveries(p.id)) and len(a) >= 3 and a)
    assert len(attempts) == 3
    ids = {a["headers"]["webhook-id"] for a in attempts}
    assert ids == {got[0]["headers"]["webhook-id"]}
    if "webhook_fail" in fault:
        assert [a["status"] for a in attempts] == [500, 500, 200]
    else:
        assert [a["status"] for a in attempts[:2]] == [None, None]
        assert all(a["error"] for a in attempts[:2]) and attempts[2]["status"] == 200
    for a in attempts:  # every attempt is signed afresh and verifies
        assert verify_signature(srv.webhook_secret, a["headers"], a["body"].encode())


def test_webhook_delivery_log_over_http(
    ctl: httpx.Client, srv: LocalServer, receiver: Receiver, echo_model: str
) -> None:
    p = ctl.post(
        f"/v1/models/{echo_model}/predictions",
        json={"input": {"text": "x"}, "webhook": receiver.url},
    ).json()
    receiver.wait_for(lambda reqs: any(r["json"]["status"] == "succeeded" for r in reqs))
    deliveries = wait_until(
        lambda: [
            d
            for d in ctl.get(
                "/_local/webhooks/deliveries", params={"prediction_id": p["id"]}
            ).json()
            if d["event"] == "completed"
        ]
    )
    assert deliveries[0]["status"] == 200 and json.loads(deliveries[0]["body"])["id"] == p["id"]
    assert {d["prediction_id"] for d in ctl.get("/_local/webhooks/deliveries").json()} >= {p["id"]}


# ---------------------------------------------------------------------------- limits


def test_limits_queue_cap_file_size_page_size_and_reset(
    ctl: httpx.Client, srv: LocalServer, echo_model: str
) -> None:
    defaults = ctl.get("/_local/limits").json()
    r = ctl.post(
        "/_local/limits",
        json={"max_queue_depth": 1, "max_upload_size": 10, "page_sizes": {"predictions": 1}},
    )
    assert r.status_code == 200 and r.json()["max_queue_depth"] == 1
    srv.script(echo_model, {"hold": True})
    first = ctl.post(f"/v1/models/{echo_model}/predictions", json={"input": {"text": "a"}})
    assert first.status_code == 201
    second = ctl.post(f"/v1/models/{echo_model}/predictions", json={"input": {"text": "b"}})
    assert second.status_code == 429 and "retry-after" in second.headers
    up = ctl.post("/v1/files", files={"content": ("a.txt", b"x" * 11, "text/plain")})
    assert up.status_code == 413
    ok = ctl.post("/v1/files", files={"content": ("a.txt", b"x" * 10, "text/plain")})
    assert ok.status_code == 201
    ctl.post(f"/_local/predictions/{first.json()['id']}/release")
    ctl.post(f"/v1/models/{echo_model}/predictions", json={"input": {"text": "c"}})
    page = ctl.get("/v1/predictions").json()
    assert len(page["results"]) == 1 and page["next"]
    # validation
    assert ctl.post("/_local/limits", json={"bogus": 1}).status_code == 422
    assert ctl.post("/_local/limits", json={"max_queue_depth": -1}).status_code == 422
    assert ctl.post("/_local/limits", json={"page_sizes": {"nope": 2}}).status_code == 422
    assert ctl.post("/_local/limits", json={"retention": "soon"}).status_code == 422
    assert ctl.post("/_local/limits", json={"retention": "2h"}).json()["retention"] == 7200
    assert ctl.post("/_local/reset").status_code == 204
    assert ctl.get("/_local/limits").json() == defaults


# ---------------------------------------------------------------------------- request log and reset


def test_request_log_never_records_tokens(
    ctl: httpx.Client, srv: LocalServer, receiver: Receiver, echo_model: str
) -> None:
    c = client(srv)
    c.run(echo_model, input={"text": "x"})
    ctl.post(
        f"/v1/models/{echo_model}/predictions",
        json={"input": {"text": "x"}, "webhook": receiver.url},
        headers={"Prefer": "wait=5", "Cancel-After": "30s", "Idempotency-Key": "k1"},
    )
    httpx.get(f"{srv.base_url}/v1/account", headers={"Authorization": "Token " + TOKEN})
    receiver.wait_for(lambda reqs: any(r["json"]["status"] == "succeeded" for r in reqs))
    log = srv.requests()
    assert len(log) >= 3
    blob = json.dumps(log) + ctl.get("/_local/requests").text
    blob += ctl.get("/_local/webhooks/deliveries").text
    assert TOKEN not in blob and "authorization" not in blob.lower()
    create = next(e for e in log if e["headers"].get("idempotency-key") == "k1")
    assert create["headers"] == {"prefer": "wait=5", "cancel-after": "30s", "idempotency-key": "k1"}
    assert create["status"] == 201 and create["duration"] >= 0
    assert not any(e["path"].startswith("/_local/") for e in log)
    assert ctl.delete("/_local/requests").status_code == 204
    assert srv.requests() == []


def test_reset_clears_faults_scripts_logs_and_predictions(
    ctl: httpx.Client, srv: LocalServer, echo_model: str
) -> None:
    srv.add_fault(path="/v1/hardware", status=500)
    srv.script(echo_model, {"output": "scripted"})
    pid = ctl.post(f"/v1/models/{echo_model}/predictions", json={"input": {"text": "a"}}).json()[
        "id"
    ]
    srv.script(echo_model, {"output": "left over"})
    assert ctl.post("/_local/reset").status_code == 204
    assert ctl.get("/_local/faults").json() == []
    assert ctl.get("/_local/requests").json() == []
    assert ctl.get(f"/_local/models/{echo_model}/script").json()["pending"] == []
    assert ctl.get(f"/v1/predictions/{pid}").status_code == 404
    assert ctl.get("/v1/hardware").status_code == 200
    assert client(srv).run(echo_model, input={"text": "b"}) == "echo b"


def test_plugin_fixture_has_controls_on(replicate_server: Any) -> None:
    assert replicate_server.config.test_controls is True
    r = httpx.get(f"{replicate_server.base_url}/_local/limits")
    assert r.status_code == 200 and "max_queue_depth" in r.json()


def test_rate_limit_emulation_on_the_virtual_clock(
    ctl: httpx.Client, srv: LocalServer, echo_model: str
) -> None:
    limits = srv.set_limits(rate_limits={"create_per_minute": 1, "burst": 2})
    assert limits["rate_limits"] == {
        "enabled": True,
        "create_per_minute": 1,
        "other_per_minute": 3000,
        "burst": 2,
    }
    url = f"/v1/models/{echo_model}/predictions"
    r1 = ctl.post(url, json={"input": {"text": "a"}})
    r2 = ctl.post(url, json={"input": {"text": "b"}})
    assert (r1.status_code, r2.status_code) == (201, 201)
    assert [r1.headers["ratelimit-remaining"], r2.headers["ratelimit-remaining"]] == ["1", "0"]
    r3 = ctl.post(url, json={"input": {"text": "c"}})
    assert r3.status_code == 429
    assert r3.json()["retry_after"] == int(r3.headers["retry-after"]) == 60
    assert r3.json()["detail"].startswith("Request was throttled.")
    assert ctl.get("/v1/account").status_code == 200  # other requests have their own bucket
    srv.advance_clock("60s")  # the window refills on the virtual clock
    assert ctl.post(url, json={"input": {"text": "d"}}).status_code == 201
    assert ctl.post("/_local/limits", json={"rate_limits": {"burst": 0}}).status_code == 422
    srv.reset()
    assert srv.limits()["rate_limits"]["enabled"] is False
    assert ctl.get("/v1/account").headers["ratelimit-remaining"] == "2999"


# ---------------------------------------------------------------------------- pure pieces


def test_fault_matchers_kinds_and_budgets() -> None:
    from replicate.local.controls import Fault, Faults

    get_model = Fault(operation="models.get", status=500)
    assert get_model.matches("GET", "/v1/models/a/b")
    assert not get_model.matches("GET", "/v1/models/a/b/versions")
    assert not get_model.matches("DELETE", "/v1/models/a/b")
    hook = Fault(path="/hooks/*", webhook_fail=503)
    assert hook.kind == "webhook" and hook.matches("POST", "http://127.0.0.1:9/hooks/x")
    assert not hook.matches("POST", "http://127.0.0.1:9/other")
    for bad in (
        {},
        {"status": 99},
        {"status": 500, "sse_drop_after": 1},
        {"drop": True, "hang": True},
        {"status": 500, "times": 0},
        {"status": 500, "probability": 2},
        {"status": 500, "until": "tomorrow"},
        {"webhook_fail": "500"},
    ):
        with pytest.raises(ValueError):
            Fault(**bad)
    now = [1000.0]
    faults = Faults(now=lambda: now[0])
    faults.add(path="/v1/x", status=500, until=1001)
    faults.add(path="/v1/x", status=502, times=2)
    assert faults.take("GET", "/v1/x").status == 500  # type: ignore[union-attr]
    assert faults.take("GET", "/v1/x", sse=True) is None  # wrong kind
    now[0] = 1001.0  # the first one expires on the (virtual) clock
    assert [f.status for f in faults.list()] == [502]
    assert faults.take("GET", "/v1/x").status == 502  # type: ignore[union-attr]
    assert faults.take("GET", "/v1/x").status == 502  # type: ignore[union-attr]
    assert faults.take("GET", "/v1/x") is None and faults.list() == []


def test_outcome_parsing_and_rate_limiter_math() -> None:
    from replicate.local.controls import Outcome, RateLimiter, Scripts

    o = Outcome.parse({"logs": "a\nb", "output": None})
    assert o.logs == ["a", "b"] and o.has_output and o.replaces_model
    assert not Outcome.parse({"hold": True}).replaces_model
    with pytest.raises(ValueError, match="hold"):
        Outcome.parse({"hold": "yes"})
    scripts = Scripts()
    scripts.add("a/b", [Outcome.parse({"error": "x"}), Outcome.parse({"output": 1})])
    popped = [scripts.pop("a/b"), scripts.pop("a/b"), scripts.pop("a/b")]
    assert [p.error if p else None for p in popped] == ["x", None, None]
    assert scripts.pending() == {}

    now = [0.0]
    rl = RateLimiter(now=lambda: now[0])
    assert rl.take(True) is None  # off by default
    rl.configure({"create_per_minute": 60, "burst": 1})
    assert rl.take(True) == (True, 0, 1)
    assert rl.take(True) == (False, 0, 1)
    now[0] = 0.5
    assert rl.take(True) == (False, 0, 1)
    now[0] = 1.6
    assert rl.take(True)[0] is True  # type: ignore[index]
    with pytest.raises(ValueError, match="burst"):
        rl.configure({"burst": -1})
    with pytest.raises(ValueError, match="unknown"):
        rl.configure({"per_second": 1})
