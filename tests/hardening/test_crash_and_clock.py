"""kill -9 of a ``replicate serve`` process during writes, then a restart on the same
database: nothing acknowledged is lost, in-flight work ends failed/aborted. Clock jumps
through /_local/clock apply deadlines and retention and leave the server usable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from replicate.local.runner import INTERRUPTED_ERROR
from replicate.local.server import LocalServer

from .support import TERMINAL

TOKEN = "r8_crash"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Serve:
    """``replicate serve`` on a database file, in its own process."""

    def __init__(self, db: Path) -> None:
        argv = ["-m", "replicate.local", "--db", str(db), "--port", "0", "--token", TOKEN]
        self.proc = subprocess.Popen(
            [sys.executable, *argv, "--test-controls"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        self.base_url = ""
        for line in self.proc.stdout:
            if line.strip().startswith("REPLICATE_BASE_URL="):
                self.base_url = line.strip().split("=", 1)[1]
                break
        assert self.base_url, "the server did not start"
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def test_kill_9_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    server = Serve(db)
    acked: dict[str, dict[str, Any]] = {}  # prediction id -> the acknowledged object
    files: dict[str, bytes] = {}
    enough = threading.Event()
    stop = threading.Event()

    def writer(kind: int) -> None:
        with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    if kind == 0:  # quick predictions, acknowledged once finished
                        r = http.post(
                            "/v1/models/local-demo/stream-text/predictions",
                            json={"input": {"prompt": f"w{i}", "max_tokens": 2, "delay_ms": 0}},
                            headers={"Prefer": "wait"},
                        )
                    elif kind == 1:  # long ones: processing or queued at the kill
                        r = http.post(
                            "/v1/models/local-demo/sleep/predictions",
                            json={"input": {"seconds": 600, "tick": 0.1}},
                        )
                    else:
                        content = f"file {i}".encode() * 100
                        r = http.post("/v1/files", files={"content": (f"f{i}.txt", content)})
                        if r.status_code == 201:
                            files[r.json()["id"]] = content
                        continue
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code in (200, 201):
                    acked[r.json()["id"]] = r.json()
                if len(acked) + len(files) >= 40:
                    enough.set()

    threads = [threading.Thread(target=writer, args=(k,)) for k in (0, 1, 2)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(120), "the writers did not get going"
        server.kill9()  # while the writers keep writing
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    restarted = Serve(db)
    try:
        with httpx.Client(base_url=restarted.base_url, headers=AUTH, timeout=30) as http:
            for pid, before in acked.items():
                r = http.get(f"/v1/predictions/{pid}")
                assert r.status_code == 200, (pid, r.text)
                now = r.json()
                assert now["status"] in TERMINAL, now
                if before["status"] == "succeeded":
                    assert now["status"] == "succeeded" and now["output"] == before["output"]
                elif now["status"] == "failed":
                    assert now["error"] == INTERRUPTED_ERROR  # was processing
                else:
                    assert now["status"] == "aborted", now  # was queued
            statuses = {p["status"] for p in acked.values()}
            assert "succeeded" in statuses and "starting" in statuses
            for fid, content in files.items():
                meta = http.get(f"/v1/files/{fid}")
                assert meta.status_code == 200, fid
                url = http.get(f"/_local/files/{fid}/signed-url").json()["url"]
                assert http.get(url).content == content
            # the restarted server works
            r = http.post(
                "/v1/models/local-demo/stream-text/predictions",
                json={"input": {"prompt": "again", "max_tokens": 1, "delay_ms": 0}},
                headers={"Prefer": "wait"},
            )
            assert r.json()["status"] == "succeeded"
    finally:
        restarted.stop()


# ---------------------------------------------------------------- clock jumps


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True, cancel_grace=0.2) as s:
        yield s


def test_clock_jumps_apply_deadlines_and_retention(server: LocalServer) -> None:
    release = threading.Event()

    def slow(cancel_event: threading.Event) -> str:
        if not release.is_set():
            cancel_event.wait(60)  # until the deadline cancels it
        return "done"

    server.register("clock/slow", slow, concurrency=1)
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as http:
        running = http.post(
            "/v1/models/clock/slow/predictions", json={"input": {}}, headers={"Cancel-After": "10s"}
        ).json()
        queued = http.post(
            "/v1/models/clock/slow/predictions", json={"input": {}}, headers={"Cancel-After": "10s"}
        ).json()
        server.wait_for_status(running["id"], "processing")
        r = http.post("/_local/clock", json={"advance": "1m"})
        assert r.status_code == 200
        assert server.wait_for_status(queued["id"])["status"] == "aborted"
        assert server.wait_for_status(running["id"])["status"] == "canceled"
        # a jump far ahead: retention removes their data
        assert http.post("/_local/clock", json={"advance": "2h"}).status_code == 200
        got = http.get(f"/v1/predictions/{running['id']}").json()
        assert got["data_removed"] is True
        # the server still runs predictions after the jumps
        release.set()
        after = http.post(
            "/v1/models/clock/slow/predictions", json={"input": {}}, headers={"Prefer": "wait"}
        ).json()
        assert after["status"] == "succeeded"
        for bad in ("nan", "inf", "-1h", "1e400", [], "999999999999999h"):
            r = http.post("/_local/clock", json={"advance": bad})
            assert 400 <= r.status_code < 500, (bad, r.text)
        assert (
            http.post(
                "/v1/models/clock/slow/predictions", json={"input": {}}, headers={"Prefer": "wait"}
            ).json()["status"]
            == "succeeded"
        )


def test_clock_jump_does_not_finish_work_without_a_deadline(server: LocalServer) -> None:
    go = threading.Event()

    def waits(cancel_event: threading.Event) -> str:
        go.wait(60)
        return "ok"

    server.register("clock/waits", waits)
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as http:
        p = http.post("/v1/models/clock/waits/predictions", json={"input": {}}).json()
        server.wait_for_status(p["id"], "processing")
        http.post("/_local/clock", json={"advance": "30d"})
        assert http.get(f"/v1/predictions/{p['id']}").json()["status"] == "processing"
        go.set()
        assert server.wait_for_status(p["id"])["status"] == "succeeded"
