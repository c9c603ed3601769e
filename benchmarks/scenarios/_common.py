"""Shared helpers for the benchmark scenarios.

Standard library only: the scenarios run under the project's interpreter *and* under the
interpreter of the separate replicate 1.0.7 virtual environment.

Every scenario script takes ``--impl ours|v107|httpx`` and ``--quick`` and prints exactly one
JSON object on its last stdout line (see :func:`emit`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
IMPLS = ("ours", "v107", "httpx")
# A fake token: the handlers never check it; it is never printed.
TOKEN = "r8_benchmark_token_not_a_secret"
BASE_URL = "https://api.replicate.com"
JSON_HEADERS = {"content-type": "application/json"}
MIB = 1024 * 1024


def parse_args(
    description: str,
    impls: tuple[str, ...] = IMPLS,
    refs: tuple[str, ...] = (),
) -> argparse.Namespace:
    """Parse the common scenario arguments (``--impl``, ``--quick``, and ``--ref`` when the
    scenario accepts several kinds of model reference: ``refs``, the first is the default)."""
    parser = argparse.ArgumentParser(description=description)

    def impl_list(value: str) -> str:
        if not value or any(part not in impls for part in value.split(",")):
            raise argparse.ArgumentTypeError(f"choose from {', '.join(impls)} (comma-separated)")
        return value

    parser.add_argument(
        "--impl",
        type=impl_list,
        required=True,
        help="implementation to measure; several, comma-separated, are measured in one process "
        "with interleaved rounds (the result is then {'joint': {impl: result}})",
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts and sizes (CI)")
    if refs:
        parser.add_argument(
            "--ref", choices=refs, default=refs[0], help="the kind of model reference to run"
        )
    return parser.parse_args()


def load_json(name: str) -> Any:
    """Load ``benchmarks/data/<name>`` (realistic bodies taken from the shared recordings)."""
    with open(DATA_DIR / name, encoding="utf-8") as fh:
        return json.load(fh)


def load_body(name: str) -> bytes:
    """The compact JSON encoding of ``benchmarks/data/<name>``, as a server would send it."""
    return json.dumps(load_json(name), separators=(",", ":"), ensure_ascii=False).encode()


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kib() -> int | None:
    """Current resident set size in KiB (Linux), else ``None``."""
    return _status_kib("VmRSS")


def peak_rss_kib() -> int | None:
    """Peak resident set size (high-water mark) in KiB, falling back to ``getrusage``."""
    value = _status_kib("VmHWM")
    if value is not None:
        return value
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak
    except Exception:
        return None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0). Returns whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class MemoryProbe:
    """Measures the peak RSS growth of a block: ``peak during the block - RSS before it``.

    When the high-water mark cannot be reset, the growth is measured against the previous
    peak instead (it can then under-report; ``exact`` says which method was used).
    """

    def __init__(self) -> None:
        self.growth_kib: int | None = None
        self.exact = False

    @contextmanager
    def measure(self) -> Iterator[MemoryProbe]:
        import gc

        gc.collect()
        self.exact = reset_peak_rss()
        before = rss_kib() if self.exact else peak_rss_kib()
        try:
            yield self
        finally:
            after = peak_rss_kib()
            if before is not None and after is not None:
                self.growth_kib = max(0, after - before)


def rates(fn: Callable[[], object], count: int, rounds: int, warmup: int) -> dict[str, Any]:
    """Call ``fn`` ``warmup`` times, then ``rounds`` x ``count`` times; report calls per second.

    The figure (``value``) is computed from the process's CPU time, the best round: these loops
    are pure CPU work in one thread (MockTransport), and CPU time is far less disturbed than
    wall time by other processes on a shared machine (interference only ever slows a round, so
    the best round is the most repeatable). Wall-clock rates are reported too (``wall_value``,
    ``wall_rounds``); on an idle machine both agree.
    """
    return interleaved_rates({"": fn}, count, rounds, warmup)[""]


def interleaved_rates(
    fns: dict[str, Callable[[], object]], count: int, rounds: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """:func:`rates` of several contenders in one process, their rounds alternating (so that a
    burst of load from other processes hits them alike)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    cpu_rates: dict[str, list[float]] = {name: [] for name in fns}
    wall_rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            wall0 = time.perf_counter()
            cpu0 = time.process_time()
            for _ in range(count):
                fn()
            cpu = time.process_time() - cpu0
            wall = time.perf_counter() - wall0
            cpu_rates[name].append(count / max(cpu, 1e-9))
            wall_rates[name].append(count / wall)
    return {
        name: {
            "value": max(cpu_rates[name]),
            "median": statistics.median(cpu_rates[name]),
            "rounds": [round(r, 1) for r in cpu_rates[name]],
            "wall_value": max(wall_rates[name]),
            "wall_rounds": [round(r, 1) for r in wall_rates[name]],
            "clock": "cpu",
            "count": count,
        }
        for name in fns
    }


def emit_joint(results: dict[str, dict[str, Any]]) -> None:
    """Print one result per implementation, or ``{"joint": {impl: result}}`` for several."""
    if len(results) == 1:
        emit(next(iter(results.values())))
    else:
        emit({"joint": results})


def environment(impl: str) -> dict[str, Any]:
    """Versions of the interpreter and the libraries in use (for the JSON report)."""
    info: dict[str, Any] = {"impl": impl, "python": platform.python_version()}
    mod = sys.modules.get("replicate")
    if mod is not None:
        info["replicate_file"] = getattr(mod, "__file__", None)
        version = getattr(mod, "__version__", None)
        if version is None:
            try:
                from importlib.metadata import version as dist_version

                version = dist_version("replicate")
            except Exception:
                version = None
        info["replicate_version"] = version
    httpx_mod = sys.modules.get("httpx")
    if httpx_mod is not None:
        info["httpx_version"] = getattr(httpx_mod, "__version__", None)
    return info


def emit(result: dict[str, Any]) -> None:
    """Print the scenario's result as one JSON line (the runner reads the last line)."""
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True), flush=True)


def fail(message: str) -> None:
    """Abort the scenario with a clear message (the runner shows it as the result)."""
    print(f"benchmark check failed: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def check(condition: bool, message: str) -> None:
    """Fail the scenario when a correctness check does not hold."""
    if not condition:
        fail(message)


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value."""
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}
