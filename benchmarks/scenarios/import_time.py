"""Scenario: the time ``import replicate`` takes in a fresh interpreter.

Median of N fresh ``python -c "import replicate"`` processes minus the median of N
``python -c "pass"`` processes (interpreter start-up), runs interleaved. ``--impl httpx``
measures ``import httpx`` as a reference point. Also reports which heavy modules the import
pulls in and the top entries of ``-X importtime``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _common import emit, environment, parse_args

HEAVY = ("httpx", "httpcore", "pydantic", "pydantic_core", "anyio", "starlette", "rich", "yaml")


def timed_run(code: str, cwd: str) -> tuple[float, float]:
    """Run ``python -c code``; return (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def importtime_top(code: str, cwd: str, top: int = 8) -> list[dict[str, object]]:
    """Top modules by cumulative import time from ``-X importtime`` (excluding start-up)."""
    baseline = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], cwd=cwd, capture_output=True, text=True
    )
    startup = {line.rsplit("|", 1)[-1].strip() for line in baseline.stderr.splitlines()}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=cwd, capture_output=True, text=True
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        name = parts[2].rstrip()
        module = name.strip()
        if module in startup:
            continue
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append({"module": module, "depth": depth, "cumulative_ms": int(parts[1]) / 1000})
    rows.sort(key=lambda r: -float(r["cumulative_ms"]))  # type: ignore[arg-type]
    return rows[:top]


def main() -> None:
    args = parse_args(__doc__ or "")
    code = "import httpx" if args.impl == "httpx" else "import replicate"
    runs = 5 if args.quick else 40
    # A neutral working directory, so no local directory shadows the package.
    cwd = tempfile.gettempdir()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{code}\nimport sys, json\nmod = sys.modules[{code.split()[1]!r}]\n"
            f"print(json.dumps([getattr(mod, '__file__', None), "
            f"sorted(m for m in {HEAVY!r} if m in sys.modules)]))",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        print(probe.stderr, file=sys.stderr)
        raise SystemExit(probe.returncode)
    module_file, heavy_loaded = json.loads(probe.stdout.strip().splitlines()[-1])

    for _ in range(1 if args.quick else 2):  # warm the OS file cache and the bytecode cache
        timed_run("pass", cwd)
        timed_run(code, cwd)
    empty: list[tuple[float, float]] = []
    full: list[tuple[float, float]] = []
    for _ in range(runs):
        empty.append(timed_run("pass", cwd))
        full.append(timed_run(code, cwd))

    def median_of(samples: list[tuple[float, float]], i: int) -> float:
        return statistics.median(s[i] for s in samples)

    result = environment(args.impl)
    result.update(
        {
            "scenario": "import_time",
            "metric": "import_ms",
            # CPU time of the child processes: robust against other load on the machine.
            "value": (median_of(full, 1) - median_of(empty, 1)) * 1000,
            "clock": "cpu",
            "wall_value": (median_of(full, 0) - median_of(empty, 0)) * 1000,
            "interpreter_startup_ms": median_of(empty, 1) * 1000,
            "with_import_ms": median_of(full, 1) * 1000,
            "runs": runs,
            "module_file": module_file,
            "heavy_modules_loaded": heavy_loaded,
            "importtime_top": importtime_top(code, cwd),
            "pythonpath": os.environ.get("PYTHONPATH", ""),
        }
    )
    emit(result)


if __name__ == "__main__":
    main()
