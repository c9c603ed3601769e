"""The client against the local server over real sockets, sync and async (docs/local-server.md)."""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest

import replicate
from replicate.exceptions import ModelError, PredictionAbortedError, ReplicateError
from replicate.local.demo_models import HELLO_WORLD_VERSIONS
from replicate.local.server import LocalServer
from server.helpers import Receiver, register_gate, wait_until

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}


def create_status(server: LocalServer, model: str) -> int:
    """HTTP status of the latest create for ``model`` (the log entry lands after the reply)."""
    path = f"/v1/models/{model}/predictions"
    entry = wait_until(lambda: [e for e in server.requests() if e["path"] == path and e["status"]])[
        -1
    ]
    return int(entry["status"])


async def call(mode: str, obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``obj.name`` (sync) or ``obj.async_name`` (async)."""
    if mode == "sync":
        return getattr(obj, name)(*args, **kwargs)
    return await getattr(obj, f"async_{name}")(*args, **kwargs)


async def test_run_hello_world(client: replicate.Client, mode: str) -> None:
    assert (
        await call(mode, client, "run", "replicate/hello-world", input={"text": "world"})
        == "hello world"
    )
    for vid in HELLO_WORLD_VERSIONS:
        out = await call(
            mode, client, "run", f"replicate/hello-world:{vid}", input={"text": "world"}
        )
        assert out == "hello world"


async def test_sync_wait_create(server: LocalServer, client: replicate.Client, mode: str) -> None:
    p = await call(
        mode,
        client.predictions,
        "create",
        model="replicate/hello-world",
        input={"text": "w"},
        wait=True,
    )
    assert p.status == "succeeded" and p.output == "hello w"
    assert p.metrics["predict_time"] >= 0 and p.metrics["total_time"] >= 0
    log = [
        e for e in server.requests() if e["method"] == "POST" and e["path"].endswith("/predictions")
    ]
    assert log[-1]["headers"]["prefer"] == "wait" and log[-1]["status"] == 201


async def test_wait_then_poll(server: LocalServer, client: replicate.Client, mode: str) -> None:
    name, gate = register_gate(server)
    p = await call(mode, client.predictions, "create", model=name, input={"text": "slow"}, wait=1)
    assert p.status == "processing"  # its own model, started at once and held by the gate
    assert create_status(server, name) == 202
    gate.release()
    if mode == "sync":
        p.wait()
    else:
        await p.async_wait()
    assert p.status == "succeeded" and p.output == "done slow"


async def test_create_without_prefer_is_starting(
    client: replicate.Client, server: LocalServer, mode: str
) -> None:
    name, gate = register_gate(server)
    gate.release()
    p = await call(mode, client.predictions, "create", model=name, input={"text": "x"})
    assert p.status == "starting" and p.started_at is None
    assert create_status(server, name) == 201


async def test_stream_tokens(client: replicate.Client, mode: str) -> None:
    v = client.models.get("local-demo/stream-text").latest_version
    ref = f"local-demo/stream-text:{v.id}"
    inp = {"prompt": "alpha beta gamma", "max_tokens": 6, "delay_ms": 1}
    outputs: list[str] = []
    if mode == "sync":
        for ev in client.stream(ref, input=inp):
            if getattr(ev.event, "value", ev.event) == "output":
                outputs.append(ev.data)
    else:
        async for ev in await client.async_stream(ref, input=inp):
            if getattr(ev.event, "value", ev.event) == "output":
                outputs.append(ev.data)
    assert "".join(outputs) == "alpha beta gamma alpha beta gamma"
    run_out = await call(mode, client, "run", ref, input=inp)
    items = list(run_out) if mode == "sync" else [x async for x in run_out]
    assert "".join(items) == "".join(outputs)


async def test_cancel(server: LocalServer, client: replicate.Client, mode: str) -> None:
    name, gate = register_gate(server)
    busy = await call(mode, client.predictions, "create", model=name, input={"text": "busy"})
    gate.wait_started(1)
    queued = await call(mode, client.predictions, "create", model=name, input={"text": "queued"})
    c = await call(mode, client.predictions, "cancel", queued.id)
    assert c.status == "canceled" and c.started_at == c.completed_at
    c2 = await call(mode, client.predictions, "cancel", busy.id)
    assert c2.status == "canceled"
    again = await call(mode, client.predictions, "cancel", busy.id)
    assert again.status == "canceled" and again.completed_at == c2.completed_at


async def test_cancel_after_aborts_and_run_returns(
    server: LocalServer, client: replicate.Client, mode: str
) -> None:
    name, gate = register_gate(server)
    await call(mode, client.predictions, "create", model=name, input={"text": "busy"})
    gate.wait_started(1)
    errors: list[BaseException] = []

    def creates() -> int:
        return sum(
            1 for e in server.requests() if e["headers"].get("cancel-after") == "5s" and e["status"]
        )

    before = creates()

    def advance_when_queued() -> None:
        wait_until(lambda: creates() > before)
        server.advance_clock(6)

    t = threading.Thread(target=advance_when_queued)
    t.start()
    try:
        await call(mode, client, "run", name, input={"text": "late"}, cancel_after=5, wait=False)
    except PredictionAbortedError as exc:
        errors.append(exc)
    t.join()
    gate.release()
    assert errors and errors[0].prediction.status == "aborted"


async def test_failing_model(client: replicate.Client, mode: str) -> None:
    with pytest.raises(ModelError) as info:
        await call(mode, client, "run", "local-demo/fail", input={"message": "it broke"})
    assert str(info.value) == "it broke"
    assert info.value.prediction.status == "failed"
    assert info.value.prediction.logs == "starting\nabout to fail\n"


async def test_validation_error_names_field(client: replicate.Client, mode: str) -> None:
    with pytest.raises(ReplicateError) as info:
        await call(
            mode,
            client.predictions,
            "create",
            model="local-demo/make-file",
            input={"text": "a", "size": 0},
        )
    assert info.value.status == 422
    assert "input.size" in str(info.value.detail)


async def test_webhook_validates(server: LocalServer, client: replicate.Client, mode: str) -> None:
    receiver = Receiver()
    try:
        p = await call(
            mode,
            client.predictions,
            "create",
            model="local-demo/stream-text",
            input={"prompt": "hook", "max_tokens": 3, "delay_ms": 1},
            webhook=receiver.url,
        )
        reqs = receiver.wait_for(
            lambda rs: any(
                r["json"]["id"] == p.id and r["json"]["status"] == "succeeded" for r in rs
            )
        )
        secret = client.webhooks.default.secret()
        for r in [r for r in reqs if r["json"]["id"] == p.id]:
            assert (
                replicate.webhooks.validate(
                    headers=r["headers"], body=r["body"].decode(), secret=secret
                )
                is True
            )
        events = [r["json"]["status"] for r in reqs if r["json"]["id"] == p.id]
        assert events[0] == "starting" and events[-1] == "succeeded"
    finally:
        receiver.close()


async def test_file_upload_then_input(
    server: LocalServer, client: replicate.Client, mode: str, tmp_path: Path
) -> None:
    def read_file(document: Path) -> str:
        return document.read_text()

    server.register("test/read-file", read_file)
    path = tmp_path / "note.txt"
    path.write_text("uploaded text")
    f = await call(mode, client.files, "create", io.BytesIO(b"direct upload"), filename="d.txt")
    assert f.size == len(b"direct upload") and f.checksums["sha256"]
    assert (
        await call(mode, client, "run", "test/read-file", input={"document": f.urls["get"]})
        == "direct upload"
    )
    with open(path, "rb") as fh:
        assert (
            await call(mode, client, "run", "test/read-file", input={"document": fh})
            == "uploaded text"
        )


async def test_file_output_read_back(client: replicate.Client, mode: str) -> None:
    from replicate.helpers import FileOutput

    out = await call(mode, client, "run", "local-demo/make-file", input={"text": "png", "size": 4})
    url = out.url if isinstance(out, FileOutput) else out
    fo = out if isinstance(out, FileOutput) else FileOutput(url, client)
    data = fo.read() if mode == "sync" else await fo.aread()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


async def test_pagination_250(mode: str) -> None:
    with LocalServer() as s:
        c = replicate.Client(api_token=s.api_token, base_url=s.base_url)
        ids = [
            c.predictions.create(model="replicate/hello-world", input={"text": str(i)}).id
            for i in range(250)
        ]
        seen: list[str] = []
        sizes: list[int] = []
        if mode == "sync":
            for page in replicate.paginate(c.predictions.list):
                sizes.append(len(page.results))
                seen += [p.id for p in page.results]
        else:
            async for page in replicate.async_paginate(c.predictions.async_list):
                sizes.append(len(page.results))
                seen += [p.id for p in page.results]
        assert sizes == [100, 100, 50]
        assert seen == list(reversed(ids))


async def test_restart_persistence(tmp_path: Path, mode: str) -> None:
    db = str(tmp_path / "s.sqlite3")
    s = LocalServer(db=db).start()
    c = replicate.Client(api_token=s.api_token, base_url=s.base_url)
    done = await call(
        mode,
        c.predictions,
        "create",
        model="replicate/hello-world",
        input={"text": "kept"},
        wait=True,
    )
    name, gate = register_gate(s)
    running = await call(mode, c.predictions, "create", model=name, input={"text": "r"})
    gate.wait_started(1)
    queued = await call(mode, c.predictions, "create", model=name, input={"text": "q"})
    secret = c.webhooks.default.secret().key
    s.crash()
    gate.release()
    with LocalServer(db=db) as s2:
        c2 = replicate.Client(api_token=s2.api_token, base_url=s2.base_url)
        assert (await call(mode, c2.predictions, "get", running.id)).status == "failed"
        assert (await call(mode, c2.predictions, "get", queued.id)).status == "aborted"
        assert (await call(mode, c2.predictions, "get", done.id)).output == "hello kept"
        assert c2.webhooks.default.secret().key == secret


async def test_twenty_concurrent_runs_fifo(
    server: LocalServer, client: replicate.Client, mode: str
) -> None:
    lock = threading.Lock()
    state = {"running": 0, "max": 0}

    def one_at_a_time(text: str) -> str:
        with lock:
            state["running"] += 1
            state["max"] = max(state["max"], state["running"])
        with lock:
            state["running"] -= 1
        return text

    name = f"test/conc-{mode}"
    server.register(name, one_at_a_time, concurrency=1)
    if mode == "sync":
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(20) as pool:
            outs = list(pool.map(lambda i: client.run(name, input={"text": str(i)}), range(20)))
    else:
        outs = await asyncio.gather(
            *(client.async_run(name, input={"text": str(i)}) for i in range(20))
        )
    assert sorted(outs, key=int) == [str(i) for i in range(20)]
    assert state["max"] == 1
    preds = [p for p in client.predictions.list().results if p.model == name]
    assert len(preds) == 20 and all(p.status == "succeeded" for p in preds)
    spans = sorted((p.started_at, p.completed_at) for p in preds)
    for (_s1, e1), (s2, _) in itertools.pairwise(spans):
        assert e1 <= s2
    assert [p.id for p in sorted(preds, key=lambda p: p.created_at)] == [
        p.id for p in sorted(preds, key=lambda p: p.started_at)
    ]


PINNED = "0123456789abcdef" * 4


async def test_register_pins_version_id(
    server: LocalServer, client: replicate.Client, mode: str
) -> None:
    """``register(version_id=)`` serves the callable under a fixed id, as code pinned to a real
    version (``"owner/name:<id>"``) needs."""
    import inspect

    assert "version_id" in inspect.signature(LocalServer.register).parameters
    name, pinned = f"pinned/m-{mode}", PINNED[:-1] + ("0" if mode == "sync" else "1")
    assert server.register(name, lambda text: text * 2, version_id=pinned) == pinned
    model = await call(mode, client.models, "get", name)
    assert model.latest_version is not None and model.latest_version.id == pinned
    version = await call(mode, model.versions, "get", pinned)
    assert version.id == pinned and isinstance(version.cog_version, str)
    assert await call(mode, client, "run", f"{name}:{pinned}", input={"text": "ab"}) == "abab"
    with pytest.raises(ValueError, match="64 lowercase hex"):
        server.register(name, lambda text: text, version_id="not-a-version")
    hello = HELLO_WORLD_VERSIONS[-1]  # version ids are global: another model's is refused
    with pytest.raises(ValueError, match="replicate/hello-world"):
        server.register(f"{name}-other", lambda text: text, version_id=hello)
    assert (
        await call(mode, client.models, "get", "replicate/hello-world")
    ).latest_version.id == hello
