"""Runner faults: a failure while running or storing a prediction ends it ``failed`` and
frees its slot; cancel of models that ignore it; generator and async cancel; temp files."""

from __future__ import annotations

import asyncio
import glob
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from replicate.local.server import LocalServer

from .support import model_threads, wait_until

AUTH = {"Authorization": "Bearer hardening"}
GRACE = 0.3  # the cancel grace of these tests' server (seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True, cancel_grace=GRACE) as s:
        yield s


@pytest.fixture(scope="module")
def http(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as c:
        yield c


_names = iter(range(10**6))


def register(server: LocalServer, fn: Any, concurrency: int = 1) -> str:
    name = f"faults/m{next(_names)}"
    server.register(name, fn, concurrency=concurrency)
    return name


def create(http: httpx.Client, model: str, inp: dict[str, Any] | None = None) -> dict[str, Any]:
    r = http.post(f"/v1/models/{model}/predictions", json={"input": inp or {}})
    assert r.status_code == 201, r.text
    return r.json()


def status_of(server: LocalServer, pid: str) -> str:
    row = server.core.store.get_prediction(pid) if server.core else None
    assert row is not None
    return str(row["status"])


def ok() -> str:
    return "ok"


# ---------------------------------------------------------------- failures end the prediction


@pytest.mark.parametrize(
    ("bad_output", "reason"),
    [
        pytest.param(lambda: "\ud800", "lone UTF-16 surrogate", id="lone-surrogate-output"),
        pytest.param(lambda: {"x": float("nan")}, "Out of range float", id="nan-output"),
        pytest.param(
            lambda: [float("inf"), "\udfff"], "Out of range float", id="inf-and-surrogate-in-list"
        ),
    ],
)
def test_output_that_cannot_be_stored_fails_and_frees_the_slot(
    server: LocalServer, http: httpx.Client, bad_output: Any, reason: str
) -> None:
    def model() -> Any:
        return bad_output()

    name = register(server, model)
    p = create(http, name)
    row = server.wait_for_status(p["id"], timeout=20)
    assert row["status"] == "failed"
    assert row["error"].startswith("the model's output cannot be stored as JSON: ")
    assert reason in row["error"]
    served = http.get(f"/v1/predictions/{p['id']}")
    assert served.status_code == 200 and served.json()["status"] == "failed"
    # the model is not wedged: the next prediction of it runs (and fails the same way)
    q = create(http, name)
    assert server.wait_for_status(q["id"], timeout=20)["status"] == "failed"


def test_lone_surrogate_in_logs_and_error_is_stored(
    server: LocalServer, http: httpx.Client
) -> None:
    def model(text: str = "") -> str:
        print("bad \ud800 line")
        raise RuntimeError("boom \udc00")

    name = register(server, model)
    p = create(http, name)
    row = server.wait_for_status(p["id"], timeout=20)
    assert row["status"] == "failed"
    assert row["error"] == "boom ?" and "bad ? line" in row["logs"]
    assert http.get(f"/v1/predictions/{p['id']}").json()["error"] == "boom ?"


def test_generator_chunk_that_cannot_be_stored_fails(
    server: LocalServer, http: httpx.Client
) -> None:
    def model() -> Iterator[Any]:
        yield "fine"
        yield float("nan")
        yield "never"

    name = register(server, model)
    p = create(http, name)
    row = server.wait_for_status(p["id"], timeout=20)
    assert row["status"] == "failed" and "cannot be stored" in row["error"]
    assert row["output"] == ["fine"]


def test_a_failing_store_ends_the_prediction_failed_and_frees_the_slot(
    server: LocalServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = register(server, ok)
    store = server.core.store  # type: ignore[union-attr]
    real = store.update_prediction
    refused = threading.Event()

    def update(pid: str, **fields: Any) -> None:
        if fields.get("status") == "succeeded" and not refused.is_set():
            refused.set()
            raise OSError("disk full (injected)")
        real(pid, **fields)

    monkeypatch.setattr(store, "update_prediction", update)
    p = create(http, name)
    row = server.wait_for_status(p["id"], timeout=20)
    assert refused.is_set()
    assert row["status"] == "failed" and "could not be stored" in row["error"]
    assert "disk full" in row["error"]
    monkeypatch.setattr(store, "update_prediction", real)
    q = create(http, name)
    assert server.wait_for_status(q["id"], timeout=20)["status"] == "succeeded"


def test_model_raising_base_exception_fails(server: LocalServer, http: httpx.Client) -> None:
    def model() -> str:
        raise SystemExit(3)

    name = register(server, model)
    row = server.wait_for_status(create(http, name)["id"], timeout=20)
    assert row["status"] == "failed" and row["error"] == "3"
    assert server.wait_for_status(create(http, name)["id"], timeout=20)["status"] == "failed"


def test_missing_output_path_fails(server: LocalServer, http: httpx.Client) -> None:
    def model() -> Path:
        return Path(tempfile.gettempdir()) / "replicate-hardening-does-not-exist.bin"

    name = register(server, model)
    row = server.wait_for_status(create(http, name)["id"], timeout=20)
    assert row["status"] == "failed" and "No such file" in row["error"]


# ---------------------------------------------------------------- models that ignore cancel


def test_cancel_of_a_model_without_cancel_event_keeps_the_slot_until_its_thread_ends(
    server: LocalServer, http: httpx.Client
) -> None:
    go = threading.Event()
    started = threading.Semaphore(0)

    def stubborn() -> str:  # no cancel_event: nothing can stop it
        started.release()
        go.wait(60)
        return "late"

    name = register(server, stubborn, concurrency=1)
    pids = []
    first = create(http, name)
    pids.append(first["id"])
    assert started.acquire(timeout=20)
    assert http.post(f"/v1/predictions/{first['id']}/cancel").json()["status"] == "canceled"
    # more predictions, each cancelled: none may start while the first thread runs on
    for _ in range(5):
        p = create(http, name)
        pids.append(p["id"])
        assert status_of(server, p["id"]) == "starting"
        http.post(f"/v1/predictions/{p['id']}/cancel")
        assert status_of(server, p["id"]) == "canceled"
    waiting = create(http, name)
    pids.append(waiting["id"])
    assert len(model_threads(pids)) == 1
    assert status_of(server, waiting["id"]) == "starting"
    go.set()  # the model's thread ends: its slot is free, the next prediction runs
    assert started.acquire(timeout=20)
    assert server.wait_for_status(waiting["id"], timeout=20)["status"] == "succeeded"
    assert status_of(server, first["id"]) == "canceled"  # its late result is dropped
    assert http.get(f"/v1/predictions/{first['id']}").json()["output"] is None


def test_cancel_event_ignored_is_forced_canceled_after_the_grace_period(
    server: LocalServer, http: httpx.Client
) -> None:
    go = threading.Event()
    started = threading.Event()

    def ignores(cancel_event: threading.Event) -> str:  # takes the event, never looks at it
        started.set()
        go.wait(60)
        return "late"

    name = register(server, ignores, concurrency=1)
    p = create(http, name)
    assert started.wait(20)
    http.post(f"/v1/predictions/{p['id']}/cancel")
    # forced to canceled after the grace period although the model still runs
    row = server.wait_for_status(p["id"], "canceled", timeout=GRACE * 50)
    assert row["status"] == "canceled"
    assert model_threads([p["id"]]), "the model's thread is still running"
    nxt = create(http, name)
    assert status_of(server, nxt["id"]) == "starting"  # the slot is still taken
    started.clear()
    go.set()
    assert started.wait(20)
    assert server.wait_for_status(nxt["id"], timeout=20)["status"] == "succeeded"
    assert status_of(server, p["id"]) == "canceled"


def test_cancelled_generator_is_not_iterated_further(
    server: LocalServer, http: httpx.Client
) -> None:
    pulled: list[int] = []
    closed = threading.Event()
    go = threading.Event()

    def gen(n: int = 50) -> Iterator[str]:
        try:
            for i in range(n):
                pulled.append(i)
                yield str(i)
                go.wait(60)
        finally:
            closed.set()

    name = register(server, gen)
    p = create(http, name)
    wait_until(lambda: http.get(f"/v1/predictions/{p['id']}").json()["output"] == ["0"])
    http.post(f"/v1/predictions/{p['id']}/cancel")
    go.set()
    assert closed.wait(20), "the generator was not closed"
    row = server.wait_for_status(p["id"], timeout=20)
    assert row["status"] == "canceled"
    assert pulled == [0, 1]  # the chunk pulled while cancelling is dropped; nothing after it
    assert row["output"] == ["0"]


def test_cancel_interrupts_async_models(server: LocalServer, http: httpx.Client) -> None:
    started = threading.Event()
    interrupted = threading.Event()

    async def sleeper() -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return "late"

    name = register(server, sleeper)
    p = create(http, name)
    assert started.wait(20)
    http.post(f"/v1/predictions/{p['id']}/cancel")
    assert interrupted.wait(20)
    assert server.wait_for_status(p["id"], timeout=20)["status"] == "canceled"
    started.clear()
    q = create(http, name)
    assert started.wait(20)  # the slot came back
    http.post(f"/v1/predictions/{q['id']}/cancel")
    assert server.wait_for_status(q["id"], timeout=20)["status"] == "canceled"


def test_async_generator_streams_and_stops_on_cancel(
    server: LocalServer, http: httpx.Client
) -> None:
    closed = threading.Event()

    async def agen() -> Any:
        try:
            yield "a"
            await asyncio.sleep(3600)
            yield "never"
        finally:
            closed.set()

    name = register(server, agen)
    p = create(http, name)
    wait_until(lambda: http.get(f"/v1/predictions/{p['id']}").json()["output"] == ["a"])
    http.post(f"/v1/predictions/{p['id']}/cancel")
    assert closed.wait(20)
    row = server.wait_for_status(p["id"], timeout=20)
    assert row["status"] == "canceled" and row["output"] == ["a"]


# ---------------------------------------------------------------- temp files


def test_make_file_leaves_no_temp_directory(server: LocalServer, http: httpx.Client) -> None:
    r = http.post(
        "/v1/models/local-demo/make-file/predictions",
        json={"input": {"text": "hi", "format": "txt"}},
        headers={"Prefer": "wait"},
    )
    p = r.json()
    assert p["status"] == "succeeded", p
    assert http.get(p["output"]).text == "hi"  # stored before the directory went
    wait_until(lambda: not model_threads([p["id"]]), what="the model's thread to end")
    pattern = os.path.join(tempfile.gettempdir(), f"replicate-local-{p['id']}-*")
    assert glob.glob(pattern) == []


def test_file_input_copies_are_removed_when_the_prediction_ends(
    server: LocalServer, http: httpx.Client
) -> None:
    seen: list[Path] = []

    def reads(f: Path) -> str:
        seen.append(f)
        return f.read_text()

    name = register(server, reads)
    p = http.post(
        f"/v1/models/{name}/predictions",
        json={"input": {"f": "data:text/plain;base64,aGVsbG8="}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["status"] == "succeeded" and p["output"] == "hello"
    wait_until(lambda: not model_threads([p["id"]]), what="the model's thread to end")
    assert seen and not seen[0].exists() and not seen[0].parent.exists()


# ---------------------------------------------------------------- who gets the grace period
# (mutation testing: the choice between "canceled at once" and "a grace period to stop")


@pytest.fixture(scope="module")
def patient() -> Iterator[LocalServer]:
    """A server with the default 10 s grace: a cooperative model is never forced meanwhile."""
    with LocalServer(test_controls=True) as s:
        yield s


def _cancel_now(server: LocalServer, pid: str) -> str:
    """Cancel through the runner and return the status right after (no waiting)."""
    core = server.core
    assert core is not None
    assert core.runner.cancel(pid) is True
    return status_of(server, pid)


@pytest.mark.parametrize("kind", ["cancel_event", "generator"])
def test_a_model_that_can_stop_gets_the_grace_period(patient: LocalServer, kind: str) -> None:
    started = threading.Event()
    go = threading.Event()

    def with_event(cancel_event: threading.Event) -> str:
        started.set()
        go.wait(60)
        return "stopped"

    def generator() -> Iterator[str]:
        started.set()
        go.wait(60)
        yield "x"

    name = register(patient, with_event if kind == "cancel_event" else generator)
    with httpx.Client(base_url=patient.base_url, headers=AUTH) as http:
        p = create(http, name)
    assert started.wait(20)
    assert _cancel_now(patient, p["id"]) == "processing"  # not forced: it may stop itself
    go.set()
    assert patient.wait_for_status(p["id"], timeout=20)["status"] == "canceled"


def test_a_queued_prediction_of_a_cooperative_model_is_canceled_at_once(
    patient: LocalServer,
) -> None:
    started = threading.Event()
    go = threading.Event()

    def with_event(n: int, cancel_event: threading.Event) -> int:
        started.set()
        go.wait(60)
        return n

    name = register(patient, with_event, concurrency=1)
    with httpx.Client(base_url=patient.base_url, headers=AUTH) as http:
        first = create(http, name, {"n": 1})
        assert started.wait(20)
        queued = create(http, name, {"n": 2})
        assert _cancel_now(patient, queued["id"]) == "canceled"
        core = patient.core
        assert core is not None
        assert core.runner.cancel(queued["id"]) is False  # finished: nothing to cancel
        go.set()
        assert patient.wait_for_status(first["id"], timeout=20)["status"] == "succeeded"


def test_a_scripted_prediction_is_canceled_at_once(patient: LocalServer) -> None:
    def with_event(cancel_event: threading.Event) -> str:
        return "never called"

    name = register(patient, with_event)
    patient.script(name, {"manual": True})
    with httpx.Client(base_url=patient.base_url, headers=AUTH) as http:
        p = create(http, name)
    patient.wait_for_status(p["id"], "processing")
    assert _cancel_now(patient, p["id"]) == "canceled"


# ---------------------------------------------------------------- plain endings (mutants)


def test_generator_and_iterator_outputs_and_an_unterminated_log_line(
    server: LocalServer, http: httpx.Client
) -> None:
    def gen() -> Iterator[str]:
        sys.stdout.write("first line\nno newline at the end")
        yield "a"
        yield "b"

    def listed() -> Iterator[str]:
        return iter(["x", "y"])  # an iterator model that returns a plain iterator

    def raw() -> bytes:
        return b"\x00\x01"

    for fn, output in ((gen, ["a", "b"]), (listed, ["x", "y"])):
        name = register(server, fn)
        row = server.wait_for_status(create(http, name)["id"], timeout=20)
        assert row["status"] == "succeeded", row
        assert row["output"] == output
    row = server.wait_for_status(create(http, register(server, gen))["id"], timeout=20)
    assert row["logs"] == "first line\nno newline at the end\n"
    events = server.core.store.events_after(row["id"], -1)  # type: ignore[union-attr]
    assert [e["data"] for e in events if e["type"] == "logs"] == [
        "first line",
        "no newline at the end",
    ]
    p = http.post(
        f"/v1/models/{register(server, raw)}/predictions",
        json={"input": {}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["status"] == "succeeded" and p["output"].endswith("/output.0.bin")
    assert http.get(p["output"]).content == b"\x00\x01"
