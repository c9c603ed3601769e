"""Benchmark of batch runs (``replicate.batch``) against the local server.

The server runs in its own process (``LocalServer`` with an on-disk SQLite database), so the
batch's client and the server do not share an interpreter. Three scenarios:

* ``fast``: ``replicate/hello-world``, client pacing lifted: the rows per second one process
  sustains, as creates per minute against the API's 600, and requests per prediction.
* ``slow``: a model that takes ``SLOW_SECONDS`` per prediction, 64 in flight: rows per second
  and requests per prediction with the default ``Prefer: wait`` and with ``wait=1`` (every
  prediction then outlives its create and is settled by the bulk list polling).
* ``limited``: the server emulates the API's default limits (600 creates and 3,000 other
  requests per minute) and the batch runs with its default pacing: the wall time of the batch
  against the floor the limit sets (rows / 600 per minute; 2,000 rows: 200 s).

Run ``python benchmarks/bench_batch.py [--quick]`` for a table; ``run(quick)`` returns the
figures (``headers`` and ``table`` rows, as ``benchmarks/run.py`` prints them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SLOW_SECONDS = 2.0

_SERVER = """
import sys, threading, time
from replicate.local.server import LocalServer

def slow(text: str) -> str:
    time.sleep(%(slow)r)
    return text

server = LocalServer(db=sys.argv[1], test_controls=True, retention=None)
server.start()
server.register("bench/slow", slow, concurrency=64)
if sys.argv[2] == "limited":
    server.set_limits(rate_limits={"enabled": True, "create_per_minute": 600,
                                   "other_per_minute": 3000})
print(server.base_url, server.api_token, flush=True)
sys.stdin.read()
server.stop()
"""


class Server:
    """A local server in a subprocess; stopped when its stdin closes."""

    def __init__(self, mode: str, workdir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER % {"slow": SLOW_SECONDS}, str(workdir / "db"), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url, self.token = self.proc.stdout.readline().split()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _batch(
    server: Server, model: str, rows: int, workdir: Path, name: str, **options: Any
) -> dict[str, Any]:
    import replicate

    client = replicate.Client(api_token=server.token, base_url=server.base_url)
    inputs = [{"text": f"{name} {i}"} for i in range(rows)]
    started = time.perf_counter()
    result = replicate.batch(
        model, inputs, client=client, results=workdir / f"{name}.jsonl", **options
    )
    wall = time.perf_counter() - started
    if len(result.succeeded) != rows:
        raise AssertionError(f"{name}: {len(result.failed)} of {rows} rows failed")
    return {
        "rows": rows,
        "wall": wall,
        "rows_per_s": rows / wall,
        "requests": result.requests,
        "requests_per_prediction": result.requests_per_prediction,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Run the three scenarios; figures and a printable table."""
    fast_rows, slow_rows, limited_rows = (300, 64, 60) if quick else (2000, 256, 2000)
    unpaced = {"creates_per_minute": 1_000_000, "requests_per_minute": 1_000_000}
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = Server("open", work)
        try:
            figures["fast"] = _batch(
                server, "replicate/hello-world", fast_rows, work, "fast", **unpaced
            )
            figures["slow"] = _batch(
                server, "bench/slow", slow_rows, work, "slow", concurrency=64, **unpaced
            )
            figures["slow wait=1"] = _batch(
                server, "bench/slow", slow_rows, work, "slow1", concurrency=64, wait=1, **unpaced
            )
        finally:
            server.close()
        limited_dir = work / "limited"
        limited_dir.mkdir()
        server = Server("limited", limited_dir)
        try:
            figures["limited"] = _batch(
                server, "replicate/hello-world", limited_rows, limited_dir, "lim"
            )
        finally:
            server.close()
    floor = limited_rows / 600 * 60
    figures["limited"]["floor"] = floor
    table = []
    for name, fig in figures.items():
        table.append(
            [
                name,
                f"{fig['rows']:,}",
                f"{fig['wall']:.1f}",
                f"{fig['rows_per_s']:.1f}",
                f"{fig['rows_per_s'] * 60:,.0f}",
                f"{fig['requests_per_prediction']:.2f}",
            ]
        )
    figures["fast"]["creates_per_minute"] = figures["fast"]["rows_per_s"] * 60
    return {
        "title": "batch runs against the local server (bench_batch.py)",
        "headers": ["scenario", "rows", "wall s", "rows/s", "rows/min", "requests/prediction"],
        "table": table,
        "figures": figures,
        "notes": [
            f"fast: one process sustains {figures['fast']['rows_per_s'] * 60:,.0f} creates/minute "
            f"({figures['fast']['rows_per_s'] * 60 / 600:.1f}x the API's 600)",
            f"limited: {limited_rows:,} rows in {figures['limited']['wall']:.1f} s against the "
            f"600 creates/minute floor of {floor:.0f} s "
            f"({figures['limited']['wall'] / floor:.2f}x the floor)",
            f"slow: {SLOW_SECONDS:g} s per prediction, 64 in flight",
        ],
    }


def main() -> None:
    quick = "--quick" in sys.argv
    out = run(quick)
    widths = [max(len(str(r[i])) for r in [out["headers"], *out["table"]]) for i in range(6)]
    for row in [out["headers"], *out["table"]]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    for note in out["notes"]:
        print(note)
    if "--json" in sys.argv:
        print(json.dumps(out["figures"], indent=2))


if __name__ == "__main__":
    os.environ.pop("REPLICATE_API_TOKEN", None)
    main()
