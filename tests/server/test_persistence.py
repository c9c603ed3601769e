"""Persistence across restarts (in-process crash and a killed ``python -m replicate.local``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from replicate.local.runner import INTERRUPTED_ERROR
from replicate.local.server import LocalServer

from .conftest import AUTH
from .helpers import register_gate, wait_status


def test_restart_after_crash(tmp_path: Path) -> None:
    db = str(tmp_path / "state.sqlite3")
    s = LocalServer(db=db).start()
    try:
        c = httpx.Client(base_url=s.base_url, headers=AUTH)
        done = c.post(
            "/v1/models/local-demo/make-file/predictions",
            json={"input": {"text": "keep"}},
            headers={"Prefer": "wait"},
        ).json()
        f = c.post("/v1/files", files={"content": ("k.txt", b"kept", "text/plain")}).json()
        secret = c.get("/v1/webhooks/default/secret").json()["key"]
        signed = s.sign_file_url(f["id"])
        name, gate = register_gate(s)
        running = c.post(f"/v1/models/{name}/predictions", json={"input": {"text": "busy"}}).json()
        gate.wait_started(1)
        queued = c.post(
            f"/v1/models/{name}/predictions", json={"input": {"text": "waiting"}}
        ).json()
        c.close()
    finally:
        s.crash()
        gate.release()
    with LocalServer(db=db) as s2, httpx.Client(base_url=s2.base_url, headers=AUTH) as c2:
        r = c2.get(f"/v1/predictions/{running['id']}").json()
        assert r["status"] == "failed" and r["error"] == INTERRUPTED_ERROR and r["completed_at"]
        q = c2.get(f"/v1/predictions/{queued['id']}").json()
        assert (
            q["status"] == "aborted" and q["completed_at"] and set(q["metrics"]) == {"total_time"}
        )
        d = c2.get(f"/v1/predictions/{done['id']}").json()
        assert d["status"] == "succeeded" and d["created_at"] == done["created_at"]
        assert httpx.get(d["output"]).status_code == 200  # output file, at the new origin
        assert c2.get(f"/v1/files/{f['id']}").json()["checksums"] == f["checksums"]
        assert c2.get("/v1/webhooks/default/secret").json()["key"] == secret
        old_origin = signed.split("/v1/")[0]
        assert httpx.get(signed.replace(old_origin, s2.base_url)).content == b"kept"
        hw = c2.get("/v1/models/replicate/hello-world").json()
        assert (
            hw["latest_version"]["id"]
            == "9dcd6d78e7c6560c340d916fe32e9f24aabfa331e5cce95fe31f77fb03121426"
        )


def _start_cli(db: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "replicate.local", "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.strip().startswith("REPLICATE_BASE_URL="):
            base = line.strip().split("=", 1)[1]
            token_line = proc.stdout.readline()
            assert token_line.strip().startswith("REPLICATE_API_TOKEN=")
            return proc, base
    raise AssertionError("server did not start:\n" + "".join(lines))


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def test_killed_cli_server_recovers(tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    db = tmp_path / "cli.sqlite3"
    proc, base = _start_cli(db)
    procs.append(proc)
    with httpx.Client(base_url=base, headers=AUTH) as c:
        ok = c.post(
            "/v1/predictions",
            json={"version": "replicate/hello-world", "input": {"text": "world"}},
            headers={"Prefer": "wait"},
        ).json()
        assert ok["output"] == "hello world"
        running = c.post(
            "/v1/models/local-demo/sleep/predictions", json={"input": {"seconds": 600, "tick": 0.1}}
        ).json()
        wait_status(c, running["id"], {"processing"})
        queued = c.post(
            "/v1/models/local-demo/sleep/predictions", json={"input": {"seconds": 1}}
        ).json()
        assert c.get(f"/v1/predictions/{queued['id']}").json()["status"] == "starting"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc2, base2 = _start_cli(db)
    procs.append(proc2)
    with httpx.Client(base_url=base2, headers=AUTH) as c:
        assert c.get(f"/v1/predictions/{running['id']}").json()["status"] == "failed"
        assert c.get(f"/v1/predictions/{queued['id']}").json()["status"] == "aborted"
        assert c.get(f"/v1/predictions/{ok['id']}").json()["output"] == "hello world"
        # graceful stop (SIGTERM): a running prediction ends canceled
        p = c.post(
            "/v1/models/local-demo/sleep/predictions", json={"input": {"seconds": 600, "tick": 0.1}}
        ).json()
        wait_status(c, p["id"], {"processing"})
    proc2.send_signal(signal.SIGTERM)
    assert proc2.wait(timeout=30) == 0
    proc3, base3 = _start_cli(db)
    procs.append(proc3)
    with httpx.Client(base_url=base3, headers=AUTH) as c:
        assert c.get(f"/v1/predictions/{p['id']}").json()["status"] == "canceled"


def test_second_server_on_the_same_db_leaves_live_predictions_alone(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.sqlite3")
    with LocalServer(db=db) as a, httpx.Client(base_url=a.base_url, headers=AUTH) as c:
        name, gate = register_gate(a)
        p = c.post(f"/v1/models/{name}/predictions", json={"input": {"text": "long"}}).json()
        gate.wait_started(1)
        with LocalServer(db=db) as b, httpx.Client(base_url=b.base_url, headers=AUTH) as c2:
            # the other server sees the prediction, still running: not marked interrupted
            assert c2.get(f"/v1/predictions/{p['id']}").json()["status"] == "processing"
        gate.release()
        assert wait_status(c, p["id"], {"succeeded"})["output"] == "done long"
