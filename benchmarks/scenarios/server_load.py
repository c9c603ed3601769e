"""Scenario: the local server's throughput under concurrent callers, against its floor.

Two servers run as separate processes, each with its SQLite database on disk:

* ``ours``: ``python -m replicate.local`` (``replicate serve``: uvicorn, one process);
* ``floor``: ``_floor_server.py``, a minimal Starlette + uvicorn app on the same stack that
  parses the JSON and does one SQLite insert and one update per create (the least a create
  must do).

The load generator (this process, asyncio, plain HTTP/1.1 over keep-alive sockets, so that it
costs little CPU) runs ``--callers`` concurrent callers in a closed loop:

* ``--workload wait``: ``POST /v1/models/replicate/hello-world/predictions`` with ``Prefer:
  wait`` (answered 201 succeeded ``hello world``);
* ``--workload stream``: a create of ``local-demo/stream-text`` (32 tokens, no delay) with
  ``"stream": true``, then its ``urls.stream`` read over SSE until ``event: done``.

``--impl ours,floor`` (what ``run.py`` uses) starts both servers and alternates rounds between
them, so that the load of a shared machine hits both alike; ``--impl ours|floor`` measures one.
Figures per server: predictions/s (best round) and the p50 / p99 latency of a prediction in
milliseconds (the lowest of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import TOKEN, check, emit_joint, environment, fail

HERE = Path(__file__).resolve().parent
WAIT_PATH = "/v1/models/replicate/hello-world/predictions"
WAIT_BODY = json.dumps({"input": {"text": "world"}}).encode()
STREAM_PATH = "/v1/models/local-demo/stream-text/predictions"
STREAM_TOKENS = 32
STREAM_INPUT = {"prompt": "the quick brown fox", "max_tokens": STREAM_TOKENS, "delay_ms": 0}
STREAM_BODY = json.dumps({"input": STREAM_INPUT, "stream": True}).encode()


# --------------------------------------------------------------------------------------------
# Servers


def start_server(impl: str, db: str) -> tuple[subprocess.Popen[str], str, int]:
    """Start one server process; return it with its host and port."""
    if impl == "ours":
        cmd = [sys.executable, "-m", "replicate.local", "--port", "0", "--db", db]
    else:
        cmd = [sys.executable, str(HERE / "_floor_server.py"), db]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on http://" in line:
            url = line.split("listening on ", 1)[1].strip()
            host, port = url.removeprefix("http://").rsplit(":", 1)
            return proc, host, int(port)
    proc.kill()
    fail(f"the {impl} server did not start")
    raise AssertionError  # unreachable


# --------------------------------------------------------------------------------------------
# A lean HTTP/1.1 client


class Connection:
    """One keep-alive connection; requests in sequence."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.prefix = f"Host: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"

    async def open(self) -> None:
        for attempt in range(100):  # the banner can come just before the socket listens
            try:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                break
            except ConnectionRefusedError:
                if attempt == 99:
                    raise
                await asyncio.sleep(0.05)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        self.writer.close()

    async def request(
        self, method: str, path: str, body: bytes = b"", extra: str = ""
    ) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\n{self.prefix}{extra}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            return status, await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";", 1)[0], 16)
                if size == 0:
                    await self.reader.readline()
                    return status, b"".join(parts)
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
        fail(f"unexpected response framing: {headers}")
        raise AssertionError  # unreachable


async def one_wait(conn: Connection) -> bytes:
    status, body = await conn.request("POST", WAIT_PATH, WAIT_BODY, "Prefer: wait\r\n")
    if status != 201:
        fail(f"create answered {status}: {body[:200]!r}")
    return body


async def one_stream(conn: Connection) -> bytes:
    status, body = await conn.request("POST", STREAM_PATH, STREAM_BODY)
    if status != 201:
        fail(f"create answered {status}: {body[:200]!r}")
    url = json.loads(body)["urls"]["stream"]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    status, events = await conn.request("GET", path, extra="Accept: text/event-stream\r\n")
    if status != 200:
        fail(f"stream answered {status}")
    return events


def check_wait(body: bytes) -> None:
    data = json.loads(body)
    check(data.get("status") == "succeeded", f"not succeeded: {body[:300]!r}")
    check(data.get("output") == "hello world", f"wrong output: {data.get('output')!r}")


def check_stream(events: bytes) -> None:
    text = events.decode()
    check(text.count("event: output\n") == STREAM_TOKENS, f"wrong token count in {text[:300]!r}")
    check("data:  fox" in text and text.rstrip().endswith("data: {}"), "stream did not end")


async def load_round(
    host: str, port: int, workload: str, callers: int, per_caller: int
) -> dict[str, Any]:
    """``callers`` connections, each doing ``per_caller`` predictions back to back."""
    one = one_wait if workload == "wait" else one_stream
    conns = [Connection(host, port) for _ in range(callers)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    clock = time.perf_counter

    async def caller(conn: Connection) -> None:
        for _ in range(per_caller):
            t0 = clock()
            await one(conn)
            latencies.append(clock() - t0)

    start = clock()
    await asyncio.gather(*(caller(c) for c in conns))
    wall = clock() - start
    for c in conns:
        c.close()
    latencies.sort()
    n = len(latencies)
    return {
        "rate": n / wall,
        "p50_ms": 1000 * latencies[n // 2],
        "p99_ms": 1000 * latencies[min(n - 1, int(0.99 * n))],
    }


async def measure(impls: list[str], workload: str, callers: int, quick: bool) -> dict[str, Any]:
    per_caller = (8 if quick else 40) if workload == "wait" else (3 if quick else 8)
    rounds = 2 if quick else 6
    tmp = tempfile.mkdtemp(prefix="replicate-bench-server-")
    servers: dict[str, tuple[subprocess.Popen[str], str, int]] = {}
    try:
        for impl in impls:
            servers[impl] = start_server(impl, os.path.join(tmp, f"{impl}.sqlite"))
        for _, host, port in servers.values():
            conn = Connection(host, port)
            await conn.open()
            if workload == "wait":
                check_wait(await one_wait(conn))
            else:
                check_stream(await one_stream(conn))
            conn.close()
            await load_round(host, port, workload, callers, max(1, per_caller // 4))  # warm-up
        results: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
        for _ in range(rounds):
            for impl, (_, host, port) in servers.items():
                results[impl].append(await load_round(host, port, workload, callers, per_caller))
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
        for proc, _, _ in servers.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    figures: dict[str, Any] = {}
    for impl, runs in results.items():
        rates = [r["rate"] for r in runs]
        figures[impl] = {
            "value": max(rates),
            "median": statistics.median(rates),
            "rounds": [round(r, 1) for r in rates],
            "p50_ms": min(r["p50_ms"] for r in runs),
            "p99_ms": min(r["p99_ms"] for r in runs),
            "p99_rounds": [round(r["p99_ms"], 1) for r in runs],
            "callers": callers,
            "workload": workload,
            "requests_per_round": callers * per_caller,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--impl",
        choices=("ours", "floor", "ours,floor", "floor,ours"),
        required=True,
        help="one server, or both (rounds alternate between them)",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workload", choices=("wait", "stream"), default="wait")
    parser.add_argument("--callers", type=int, default=16)
    args = parser.parse_args()
    impls = args.impl.split(",")
    figures = asyncio.run(measure(impls, args.workload, args.callers, args.quick))
    scenario = "server" if args.workload == "wait" else "server_stream"
    per_impl = {}
    for impl, fig in figures.items():
        result = environment(impl)
        result.update(scenario=scenario, metric="predictions_per_s", **fig)
        per_impl[impl] = result
    emit_joint(per_impl)


if __name__ == "__main__":
    main()
