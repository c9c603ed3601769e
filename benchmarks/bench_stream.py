"""Benchmark of the full streaming path.

The stream of ``bench_sse.py`` (20,000 Replicate-like events: ``output`` tokens with ids, some
``logs``, a final ``done``) is served from memory through ``httpx.MockTransport`` in 4 KiB chunks.
Each contender opens the stream URL and turns every event into an event object:

* ``ours Prediction.stream()``: ``Prediction.stream()`` (connection headers, decoding, event
  names, duplicate-id check, file-output check, :class:`~replicate.stream.ServerSentEvent`);
* ``ours EventSource``: the 1.0.x-style :class:`~replicate.stream.EventSource` over a response;
* ``ours async_stream()``: ``Prediction.async_stream()`` with ``async for``;
* ``httpx-sse``: ``httpx_sse.EventSource(response).iter_sse()`` on a plain httpx client;
* ``replicate 1.0.7``: its ``Prediction.stream()`` in its own venv, as a black box
  (``bench_sse._v107``).

Target: ours at least 4x replicate 1.0.7 and no lower than httpx-sse.
Rates are events per second (events in the stream / wall time, best of N runs).
Run ``python benchmarks/bench_stream.py [--quick]``; ``run(quick)`` returns the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_sse import CHUNK_SIZE, STREAM_URL, V107_PYTHON, _Chunks, make_stream

TARGET_VS_V107 = 4.0
TARGET_VS_HTTPX_SSE = 1.0
TOKEN = "r8_benchmark_token_not_a_secret"

PREDICTION = {
    "id": "p1",
    "model": "a/b",
    "version": "v",
    "status": "starting",
    "input": {},
    "output": None,
    "logs": "",
    "error": None,
    "created_at": "2023-01-01T00:00:00Z",
    "urls": {
        "get": "https://api.replicate.com/v1/predictions/p1",
        "cancel": "https://api.replicate.com/v1/predictions/p1/cancel",
        "stream": STREAM_URL,
    },
}


class _AsyncChunks(httpx.AsyncByteStream):
    def __init__(self, body: bytes, size: int) -> None:
        self._body = body
        self._size = size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body, size = self._body, self._size
        for i in range(0, len(body), size):
            yield body[i : i + size]


def _handler(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "stream.replicate.test":
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                stream=_Chunks(body, CHUNK_SIZE),
            )
        return httpx.Response(200, json=PREDICTION)

    return handler


def _async_handler(body: bytes) -> Callable[[httpx.Request], Any]:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_AsyncChunks(body, CHUNK_SIZE),
        )

    return handler


def _our_prediction(body: bytes, *, async_: bool = False) -> Any:
    from replicate.client import Client
    from replicate.prediction import Prediction

    transport = httpx.MockTransport(_async_handler(body) if async_ else _handler(body))
    client = Client(api_token=TOKEN, transport=transport)
    return Prediction._from_api(PREDICTION, client)


def _stream_of(prediction: Any) -> Any:
    return prediction.stream()


def _async_stream_of(prediction: Any) -> Any:
    return prediction.async_stream()


def _timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """``(wall seconds, thread CPU seconds, events)`` of one run of ``fn``."""
    w0, c0 = time.perf_counter(), time.thread_time()
    count = fn()
    return time.perf_counter() - w0, time.thread_time() - c0, count


def _ours_stream(prediction: Any) -> Callable[[], int]:
    def consume() -> int:
        n = 0
        for _ in _stream_of(prediction):
            n += 1
        return n

    return consume


def _ours_event_source(body: bytes) -> Callable[[], int]:
    from replicate.client import Client
    from replicate.stream import EventSource

    client = Client(api_token=TOKEN, transport=httpx.MockTransport(_handler(body)))
    http = client._get_sync_client(download=True)

    def consume() -> int:
        n = 0
        with http.stream("GET", STREAM_URL, headers={"Accept": "text/event-stream"}) as response:
            for _ in EventSource(client, response):
                n += 1
        return n

    return consume


def _ours_async(prediction: Any, loop: asyncio.AbstractEventLoop) -> Callable[[], int]:

    async def main() -> int:
        n = 0
        async for _ev in _async_stream_of(prediction):
            n += 1
        return n

    def consume() -> int:
        return loop.run_until_complete(main())

    return consume


def _httpx_sse(body: bytes) -> Callable[[], int]:
    from httpx_sse import EventSource

    client = httpx.Client(transport=httpx.MockTransport(_handler(body)))

    def consume() -> int:
        n = 0
        with client.stream("GET", STREAM_URL, headers={"Accept": "text/event-stream"}) as response:
            for _ in EventSource(response).iter_sse():
                n += 1
        return n

    return consume


def _check(body: bytes, n_events: int) -> None:
    """Our events must be httpx-sse's events (same names, data, ids) before anything is timed."""
    from httpx_sse import EventSource

    client = httpx.Client(transport=httpx.MockTransport(_handler(body)))
    with client, client.stream("GET", STREAM_URL) as response:
        theirs = [(e.event, e.data, e.id) for e in EventSource(response).iter_sse()]
    theirs[-1] = (theirs[-1][0], theirs[-1][1], "")  # httpx-sse repeats the last id
    ours = [(e.event.value, str(e.data), e.id) for e in _stream_of(_our_prediction(body))]
    if len(ours) != n_events or ours != theirs:
        raise AssertionError("Prediction.stream() disagrees with httpx-sse on the benchmark stream")


# Run in replicate 1.0.7's venv: its public API only (black box). Prints the best wall and
# thread-CPU times of ``repeats`` runs of ``for ev in prediction.stream()``.
_V107_SCRIPT = r"""
import json, sys, time
import httpx
from replicate.client import Client

body = open(sys.argv[1], "rb").read()
repeats, size, stream_url = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

class Chunks(httpx.SyncByteStream):
    def __iter__(self):
        for i in range(0, len(body), size):
            yield body[i : i + size]

prediction = json.loads(sys.argv[5])

def handler(request):
    if request.url.host == httpx.URL(stream_url).host:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Chunks())
    return httpx.Response(200, json=prediction)

client = Client(api_token="bench-token", transport=httpx.MockTransport(handler))
pred = client.predictions.get("p1")
wall = cpu = float("inf")
count = 0
for _ in range(repeats):
    w0, c0 = time.perf_counter(), time.thread_time()
    count = 0
    for _ev in pred.stream():
        count += 1
    wall = min(wall, time.perf_counter() - w0)
    cpu = min(cpu, time.thread_time() - c0)
print(json.dumps({"wall": wall, "cpu": cpu, "events": count}))
"""


def _v107(body: bytes, repeats: int) -> tuple[float, float, int] | None:
    """Best (wall, CPU) seconds and the event count of replicate 1.0.7, or ``None``."""
    if not os.path.exists(V107_PYTHON):
        return None
    with tempfile.NamedTemporaryFile(suffix=".sse", delete=False) as f:
        f.write(body)
        path = f.name
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        args = [path, str(repeats), str(CHUNK_SIZE), STREAM_URL, json.dumps(PREDICTION)]
        proc = subprocess.run(
            [V107_PYTHON, "-I", "-c", _V107_SCRIPT, *args],
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
            env=env,
            timeout=600,
            check=False,
        )
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        print(f"replicate 1.0.7 run failed:\n{proc.stderr}", file=sys.stderr)
        return None
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(result["wall"]), float(result["cpu"]), int(result["events"])


def run(quick: bool = False) -> dict[str, Any]:
    """Run every contender; return rates (events/s), ratios and whether the targets are met.

    ``quick`` uses 2,000 events and 3 repeats instead of 20,000 events and 7 repeats.

    Two rates per contender, each the best of the repeats: by wall time, and by the CPU time of
    the consuming thread. The workload is single-threaded and CPU-bound (bytes from memory), so
    the CPU figure is what an idle machine's wall clock shows, and it is not inflated by other
    processes on a shared machine: the targets are checked on it. Contenders run interleaved,
    round after round; 1.0.7 runs in its own process before and after ours.
    """
    n_events = 2_000 if quick else 20_000
    repeats = 3 if quick else 7
    body = make_stream(n_events)
    _check(body, n_events)

    v107_runs = [_v107(body, repeats)]
    prediction = _our_prediction(body)
    async_prediction = _our_prediction(body, async_=True)
    loop = asyncio.new_event_loop()
    contenders: dict[str, Callable[[], int]] = {
        "ours Prediction.stream()": _ours_stream(prediction),
        "ours EventSource": _ours_event_source(body),
        "httpx-sse": _httpx_sse(body),
        "ours async_stream()": _ours_async(async_prediction, loop),
    }
    wall: dict[str, float] = dict.fromkeys(contenders, float("inf"))
    cpu: dict[str, float] = dict.fromkeys(contenders, float("inf"))
    try:
        for _ in range(repeats):
            for name, consume in contenders.items():
                w, c, count = _timed(consume)
                if count != n_events:
                    raise AssertionError(f"{name} yielded {count} events, expected {n_events}")
                wall[name] = min(wall[name], w)
                cpu[name] = min(cpu[name], c)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    v107_runs.append(_v107(body, repeats))
    v107_ok = [r for r in v107_runs if r is not None]
    if v107_ok:
        if any(r[2] != n_events for r in v107_ok):
            raise AssertionError(f"replicate 1.0.7 yielded {v107_ok[0][2]} events")
        wall["replicate 1.0.7"] = min(r[0] for r in v107_ok)
        cpu["replicate 1.0.7"] = min(r[1] for r in v107_ok)

    names = [*contenders, "replicate 1.0.7"]
    rates = {n: (n_events / cpu[n] if n in cpu else None) for n in names}
    wall_rates = {n: (n_events / wall[n] if n in wall else None) for n in names}
    ours = rates["ours Prediction.stream()"]
    v107_rate = rates["replicate 1.0.7"]
    httpx_sse_rate = rates["httpx-sse"]
    assert ours and httpx_sse_rate
    vs_v107 = ours / v107_rate if v107_rate else None
    vs_httpx_sse = ours / httpx_sse_rate
    return {
        "events": n_events,
        "bytes": len(body),
        "chunk_size": CHUNK_SIZE,
        "repeats": repeats,
        "rates": rates,
        "wall rates": wall_rates,
        "ours / replicate 1.0.7": vs_v107,
        "ours / httpx-sse": vs_httpx_sse,
        "targets met": (vs_v107 is not None and vs_v107 >= TARGET_VS_V107)
        and vs_httpx_sse >= TARGET_VS_HTTPX_SSE,
    }


def _main() -> int:
    quick = "--quick" in sys.argv[1:]
    results = run(quick)
    print(
        f"Full stream path: {results['events']:,} events, {results['bytes']:,} bytes, "
        f"{results['chunk_size']} B chunks, best of {results['repeats']}"
    )
    ours = results["rates"]["ours Prediction.stream()"]
    ours_wall = results["wall rates"]["ours Prediction.stream()"]
    print(
        f"{'contender':<26} {'events/s CPU':>13} {'ours / it':>10} {'events/s wall':>14} {'ours / it':>10}"
    )
    for name, rate in results["rates"].items():
        wall = results["wall rates"][name]
        cells = [
            f"{rate:,.0f}" if rate else "n/a",
            f"{ours / rate:.2f}x" if rate else "n/a",
            f"{wall:,.0f}" if wall else "n/a",
            f"{ours_wall / wall:.2f}x" if wall else "n/a",
        ]
        print(f"{name:<26} {cells[0]:>13} {cells[1]:>10} {cells[2]:>14} {cells[3]:>10}")
    vs_v107 = results["ours / replicate 1.0.7"]
    print(
        f"targets (CPU rates): >= {TARGET_VS_V107:.0f}x replicate 1.0.7 "
        f"({'n/a' if vs_v107 is None else f'{vs_v107:.2f}x'}), "
        f">= httpx-sse ({results['ours / httpx-sse']:.2f}x): "
        f"{'met' if results['targets met'] else 'NOT MET'}"
    )
    return 0 if results["targets met"] or quick else 1


if __name__ == "__main__":
    sys.exit(_main())
