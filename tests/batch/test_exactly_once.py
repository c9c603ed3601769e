"""The exactly-once proof: 2,000 rows through 429 storms, lost answers, a server crash and
restart, and a client killed with SIGKILL and resumed. Every row ends with exactly one
succeeded prediction and every prediction on the server belongs to exactly one row."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import replicate
from replicate.local.server import LocalServer

pytest.importorskip("starlette")

ROWS = 2000
MODEL = "replicate/hello-world"


def replicate_exe() -> list[str]:
    found = shutil.which("replicate", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "replicate"]


def storms(server: LocalServer) -> None:
    server.add_fault(
        operation="models.predictions.create", status=429, retry_after=0, probability=0.25
    )
    server.add_fault(operation="predictions.list", status=429, retry_after=0, probability=0.25)
    server.add_fault(operation="models.predictions.create", drop_response=True, probability=0.03)


def created(state: Path) -> int:
    if not state.exists():
        return 0
    return state.read_text().count('"type":"created"')


def wait_for(condition: Any, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(12000):  # bounded: at most ~2 minutes
        if condition():
            return
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise AssertionError(f"the batch exited ({proc.returncode}) before {what}: {err}")
        threading.Event().wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(900)
def test_a_2000_row_batch_survives_storms_a_server_restart_and_a_killed_client(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "server.sqlite3")
    inputs = tmp_path / "rows.jsonl"
    inputs.write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(ROWS)))
    out = tmp_path / "out"
    state = out / "state.jsonl"
    server = LocalServer(db=db, test_controls=True, retention=None).start()
    port = server.port
    try:
        storms(server)
        env = {
            **os.environ,
            "REPLICATE_BASE_URL": server.base_url,
            "REPLICATE_API_TOKEN": server.api_token,
        }
        proc = subprocess.Popen(
            [
                *replicate_exe(),
                "batch",
                MODEL,
                str(inputs),
                "-o",
                str(out),
                "--creates-per-minute",
                "100000",
                "--requests-per-minute",
                "200000",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            t0 = time.monotonic()
            wait_for(lambda: created(state) >= 500, proc, "500 predictions were created")
            print(f"\n500 created after {time.monotonic() - t0:.1f} s")
            server.crash()
            server = LocalServer(db=db, test_controls=True, retention=None, port=port).start()
            storms(server)
            wait_for(lambda: created(state) >= 1000, proc, "the batch went on after the restart")
            print(f"1000 created after {time.monotonic() - t0:.1f} s")
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()

        client = replicate.Client(api_token=server.api_token, base_url=server.base_url)
        options: dict[str, Any] = {
            "client": client,
            "results": out / "results.jsonl",
            "state": state,
            "output_dir": out,
            "creates_per_minute": 100_000,
            "requests_per_minute": 200_000,
        }
        t1 = time.monotonic()
        result = replicate.batch(MODEL, inputs, **options)
        print(f"resumed in {time.monotonic() - t1:.1f} s")
        if result.failed:  # predictions the crash interrupted end failed; run them again
            assert {r.error for r in result.failed} <= {None} | {
                r.error for r in result.failed if r.error and "interrupt" in r.error.lower()
            }
            result = replicate.batch(MODEL, inputs, retry_failed=True, **options)
        server.faults.clear()
        assert len(result.succeeded) == ROWS

        # Results: complete, in row order, one line per row, every output right.
        lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
        assert [x["row"] for x in lines] == list(range(ROWS))
        assert all(x["status"] == "succeeded" for x in lines)
        assert [x["output"] for x in lines] == [f"hello row {i}" for i in range(ROWS)]

        # The server: exactly one succeeded prediction per row, and nothing nobody owns.
        assert server.core is not None
        on_server = server.core.store.query(
            "SELECT id, status, input FROM predictions"
            " WHERE kind = 'prediction' AND is_example = 0 AND model = ?",
            [MODEL],
        )
        claims = Counter(
            r["id"]
            for r in map(json.loads, state.read_text().splitlines())
            if r.get("type") == "created"
        )
        assert all(count == 1 for count in claims.values()), "a prediction was claimed twice"
        assert {p["id"] for p in on_server} == set(claims), "a prediction belongs to no row"
        succeeded_per_input = Counter(
            json.loads(p["input"])["text"] for p in on_server if p["status"] == "succeeded"
        )
        assert succeeded_per_input == {f"row {i}": 1 for i in range(ROWS)}
        print(
            f"\n{len(on_server)} predictions on the server for {ROWS} rows "
            f"({Counter(p['status'] for p in on_server)}); resume: {result.requests} requests"
        )
    finally:
        server.stop()
