"""Load: 1,000 concurrent ``async_run`` plus 16 threads sharing one sync ``Client`` against
a server in its own process. Every prediction runs exactly once, no call fails, and the
server's memory stays flat from one round to the next (figures in tests/hardening/README.md).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import replicate

from .support import rss_bytes

TOKEN = "r8_load"
ASYNC_CALLS = 1000
THREADS = 16
CALLS_PER_THREAD = 10
MB = 1024 * 1024
#: Growth of the server's RSS allowed over a whole second round (after a first round
#: warmed up caches, pools and thread stacks).
ROUND_GROWTH_BOUND = 40 * MB


class Served:
    def __init__(self, tmp: Path) -> None:
        self.counts = tmp / "runs.txt"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("serve_counting.py")),
                str(tmp / "load.sqlite3"),
                str(self.counts),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        assert self.base_url.startswith("http://"), self.base_url

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def runs(self) -> Counter[int]:
        return Counter(int(x) for x in self.counts.read_text().split())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("load"))
    yield s
    s.close()


def one_round(
    served: Served, start: int, async_calls: int = ASYNC_CALLS, per_thread: int = CALLS_PER_THREAD
) -> list[int]:
    """``async_calls`` concurrent async_run + 16 threads x ``per_thread`` run on one shared
    sync Client; returns every input number used (outputs are checked against them)."""
    sync_client = replicate.Client(api_token=TOKEN, base_url=served.base_url)
    errors: list[BaseException] = []
    sync_inputs = [
        [start + async_calls + t * per_thread + i for i in range(per_thread)]
        for t in range(THREADS)
    ]
    go = threading.Event()

    def worker(numbers: list[int]) -> None:
        go.wait()
        try:
            for n in numbers:
                assert sync_client.run("load/echo", input={"n": n}) == n
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(nums,)) for nums in sync_inputs]
    for t in threads:
        t.start()

    async def many() -> list[int]:
        # One connection per concurrent call: with 1,000 requests queued behind the default
        # pool of 100, httpcore spends minutes of CPU re-scanning its queue (quadratic).
        limits = httpx.Limits(max_connections=async_calls, max_keepalive_connections=async_calls)
        client = replicate.Client(api_token=TOKEN, base_url=served.base_url, limits=limits)
        go.set()
        numbers = list(range(start, start + async_calls))
        outs = await asyncio.gather(
            *(client.async_run("load/echo", input={"n": n}) for n in numbers)
        )
        assert list(outs) == numbers
        return numbers

    numbers = asyncio.run(many())
    for t in threads:
        t.join()
    assert errors == []
    return numbers + [n for nums in sync_inputs for n in nums]


@pytest.mark.timeout(900)  # minutes on a loaded 2-core box; about half a minute in CI
def test_load_every_prediction_runs_exactly_once_and_memory_stays_flat(
    served: Served,
) -> None:
    per_round = ASYNC_CALLS + THREADS * CALLS_PER_THREAD
    before = served.rss()
    first = one_round(served, 0)
    after_first = served.rss()
    # a second, half-size round: the server's memory must not keep growing
    second = one_round(served, per_round, ASYNC_CALLS // 2, CALLS_PER_THREAD // 2)
    after_second = served.rss()
    runs = served.runs()
    assert sorted(runs) == sorted(first + second)
    assert set(runs.values()) == {1}  # every prediction ran exactly once
    growth = after_second - after_first
    print(
        f"\nload: {len(first) + len(second)} predictions; server RSS {before / MB:.1f} MB -> "
        f"{after_first / MB:.1f} MB after round 1 -> {after_second / MB:.1f} MB after round 2 "
        f"(round 2 growth {growth / MB:+.1f} MB)"
    )
    assert growth < ROUND_GROWTH_BOUND
