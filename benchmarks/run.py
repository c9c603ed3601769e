"""Benchmarks: our client side by side with replicate-python 1.0.7 and raw httpx.

Usage::

    python benchmarks/run.py [--quick] [--json out.json] [--only NAME,...]
                             [--v107-venv DIR] [--no-sse]

Each scenario (``benchmarks/scenarios/*.py``) runs in a fresh subprocess per implementation, so
import caches and memory figures are clean:

* ``ours``: the current interpreter, with this repository's ``src`` first on ``PYTHONPATH``;
* ``v107``: replicate 1.0.7 installed from the package registry into a separate virtual
  environment (created on first use at ``.bench/v107``; the httpx and pydantic versions of the
  current interpreter are pinned there too, so only the client differs);
* ``httpx``: the current interpreter doing the same requests with plain httpx;
* ``floor`` (the server scenarios): a minimal Starlette endpoint doing the least a create must
  do, measured in the same process as ``ours`` with interleaved rounds.

The targets (see benchmarks/README.md) are checked and shown as PASS/FAIL. ``--quick`` (CI) shrinks counts and
sizes and always exits 0 (it reports); the full run exits 1 when a target fails or cannot be
measured. The SSE benchmarks (``benchmarks/bench_sse.py``, ``bench_stream.py``) are
run too, each ``run(quick)`` in a fresh process; ``bench_stream``'s own targets count as a check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
SCENARIO_DIR = BENCH_DIR / "scenarios"
DEFAULT_VENV = REPO / ".bench" / "v107"
V107_SPEC = "replicate==1.0.7"
IMPL_LABELS = {"ours": "ours", "v107": "1.0.7", "httpx": "httpx", "floor": "floor"}


@dataclass(frozen=True)
class Target:
    """A requirement on a figure: a ratio between two implementations, or an absolute limit."""

    label: str
    field: str
    op: str  # "<=" or ">="
    limit: float
    versus: str | None = None  # the denominator implementation; None = absolute limit on "ours"

    def value(self, results: dict[str, dict[str, Any]]) -> float | None:
        """The checked figure, or ``None`` when a needed result is missing."""
        mine = _figure(results.get("ours"), self.field)
        if mine is None:
            return None
        if self.versus is None:
            return mine
        theirs = _figure(results.get(self.versus), self.field)
        if not theirs:
            return None
        return mine / theirs

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets the target."""
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def describe(self) -> str:
        """The target as text, e.g. ``<= 0.60x``."""
        unit = "x" if self.versus else " MiB"
        return f"{self.op} {self.limit:g}{unit}"


@dataclass(frozen=True)
class Scenario:
    """One benchmark script and the figures it is judged by."""

    name: str
    script: str
    title: str
    unit: str
    lower_is_better: bool
    targets: tuple[Target, ...] = ()
    extra_fields: tuple[tuple[str, str], ...] = ()  # (field, label) also shown per implementation
    timeout_s: float = 600.0
    impls: tuple[str, ...] = ("ours", "v107", "httpx")
    args: tuple[str, ...] = ()  # extra arguments of the script
    # Implementations measured together in one process, their rounds interleaved (so that a
    # burst of load from other processes hits them alike); it prints {"joint": {impl: result}}.
    # The others run in a process each.
    joint: tuple[str, ...] = ()
    lowest_fields: tuple[str, ...] = ()  # figures merged as the lowest over attempts (latencies)

    @property
    def floor(self) -> str:
        """The implementation in the third column: raw httpx, or the floor server."""
        return "floor" if "floor" in self.impls else "httpx"


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "import_time",
        "import_time.py",
        "import replicate (httpx: import httpx)",
        "ms",
        lower_is_better=True,
        targets=(Target("ours / 1.0.7 time", "value", "<=", 0.6, versus="v107"),),
    ),
    Scenario(
        "predictions_get",
        "predictions_get.py",
        "predictions.get loop over MockTransport",
        "calls/s",
        lower_is_better=False,
        targets=(
            Target("ours / 1.0.7 calls/s", "value", ">=", 1.1, versus="v107"),
            Target("ours / httpx calls/s", "value", ">=", 0.95, versus="httpx"),
        ),
    ),
    Scenario(
        "run",
        "run_once.py",
        "run() of a prediction that succeeds at once",
        "runs/s",
        lower_is_better=False,
        targets=(Target("ours / 1.0.7 runs/s", "value", ">=", 1.2, versus="v107"),),
    ),
    Scenario(
        "run_model",
        "run_once.py",
        'run("owner/model"), one POST answered at once',
        "runs/s",
        lower_is_better=False,
        targets=(Target("ours / httpx runs/s", "value", ">=", 0.9, versus="httpx"),),
        args=("--ref", "model"),
        joint=("ours", "httpx"),
    ),
    Scenario(
        "async_run",
        "async_run.py",
        "1,000 concurrent async_run, 20 ms per request",
        "s wall",
        lower_is_better=True,
        targets=(Target("ours / 1.0.7 wall time", "value", "<=", 0.8, versus="v107"),),
    ),
    Scenario(
        "async_run_model",
        "async_run.py",
        '1,000 concurrent async_run("owner/model"), 20 ms',
        "s wall",
        lower_is_better=True,
        targets=(Target("ours / httpx wall time", "value", "<=", 1.1, versus="httpx"),),
        args=("--ref", "model"),
        joint=("ours", "httpx"),
    ),
    Scenario(
        "download",
        "download.py",
        "iterate a FileOutput from a loopback server",
        "MiB/s",
        lower_is_better=False,
        targets=(
            Target("ours peak memory growth", "mem_growth_mib", "<=", 16.0),
            Target("ours / 1.0.7 throughput", "value", ">=", 0.9, versus="v107"),
        ),
        extra_fields=(("mem_growth_mib", "peak memory growth (MiB)"),),
    ),
    Scenario(
        "upload",
        "upload.py",
        "files.create through a chunk-consuming transport",
        "MiB/s",
        lower_is_better=False,
        targets=(
            Target("ours peak memory growth", "mem_growth_mib", "<=", 16.0),
            Target("ours / 1.0.7 throughput", "value", ">=", 0.9, versus="v107"),
        ),
        extra_fields=(("mem_growth_mib", "peak memory growth (MiB)"),),
    ),
    Scenario(
        "server",
        "server_load.py",
        "local server: hello-world, Prefer: wait, 16 callers",
        "predictions/s",
        lower_is_better=False,
        targets=(
            Target("ours / floor predictions/s", "value", ">=", 0.9, versus="floor"),
            Target("ours / floor p99 latency", "p99_ms", "<=", 1.25, versus="floor"),
        ),
        extra_fields=(("p50_ms", "p50 latency (ms)"), ("p99_ms", "p99 latency (ms)")),
        impls=("ours", "floor"),
        args=("--workload", "wait", "--callers", "16"),
        joint=("ours", "floor"),
        lowest_fields=("p50_ms", "p99_ms"),
    ),
    Scenario(
        "server_stream",
        "server_load.py",
        "local server: stream-text over SSE, 64 callers",
        "predictions/s",
        lower_is_better=False,
        targets=(
            Target("ours / floor predictions/s", "value", ">=", 0.9, versus="floor"),
            Target("ours / floor p99 latency", "p99_ms", "<=", 1.25, versus="floor"),
        ),
        extra_fields=(("p50_ms", "p50 latency (ms)"), ("p99_ms", "p99 latency (ms)")),
        impls=("ours", "floor"),
        args=("--workload", "stream", "--callers", "64"),
        joint=("ours", "floor"),
        lowest_fields=("p50_ms", "p99_ms"),
    ),
)


def _figure(result: dict[str, Any] | None, name: str) -> float | None:
    if not result or "error" in result:
        return None
    value = result.get(name)
    return float(value) if isinstance(value, (int, float)) else None


def log(message: str) -> None:
    """Progress output (stderr, so that stdout carries only the table)."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The replicate 1.0.7 virtual environment


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def installed_replicate_version(python: Path) -> str | None:
    """The replicate distribution version installed for ``python``, or ``None``."""
    if not python.exists():
        return None
    proc = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('replicate'))"],
        capture_output=True,
        text=True,
        env=v107_env(),
        cwd=tempfile.gettempdir(),
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_v107(venv: Path) -> Path:
    """Create (or reuse) the virtual environment holding replicate 1.0.7; return its python."""
    python = venv_python(venv)
    if installed_replicate_version(python) == "1.0.7":
        return python
    log(f"creating a virtual environment for {V107_SPEC} at {venv} ...")
    venv.parent.mkdir(parents=True, exist_ok=True)
    pins = []
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("httpx", "pydantic"):
        try:
            pins.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            pass
    # Fast path: a venv without its own pip, filled by this interpreter's pip (pip >= 22.3
    # has --python); otherwise a classic venv with pip inside.
    try:
        pip_major_minor = tuple(int(p) for p in version("pip").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        pip_major_minor = (0, 0)
    if pip_major_minor >= (22, 3):
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)], check=True
        )
        base = [sys.executable, "-m", "pip", "--python", str(python), "install"]
    else:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        base = [str(python), "-m", "pip", "install"]
    base += ["--quiet", "--disable-pip-version-check"]
    proc = subprocess.run([*base, V107_SPEC, *pins], check=False)
    if proc.returncode != 0 and pins:
        log(f"installing with pins {pins} failed; retrying without them")
        proc = subprocess.run([*base, V107_SPEC], check=False)
    if proc.returncode != 0 or installed_replicate_version(python) != "1.0.7":
        raise SystemExit(f"could not install {V107_SPEC} into {venv}")
    return python


# --------------------------------------------------------------------------------------------
# Running scenarios


def v107_env() -> dict[str, str]:
    """Environment for the 1.0.7 interpreter: nothing that could point it at our package."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def ours_env() -> dict[str, str]:
    """Environment for our interpreter: this repository's ``src`` first on the path."""
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@dataclass
class Runner:
    """Runs scenario scripts in fresh subprocesses."""

    quick: bool
    v107_python: Path | None
    repeat: int = 1
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def command(
        self, impl: str, script: Path, args: tuple[str, ...] = ()
    ) -> tuple[list[str], dict[str, str]] | None:
        if impl == "v107":
            if self.v107_python is None:
                return None
            python, env = str(self.v107_python), v107_env()
        else:
            python, env = sys.executable, ours_env()
        cmd = [python, str(script), "--impl", impl, *args]
        if self.quick:
            cmd.append("--quick")
        return cmd, env

    def run_one(self, scenario: Scenario, impl: str) -> dict[str, Any]:
        prepared = self.command(impl, SCENARIO_DIR / scenario.script, scenario.args)
        if prepared is None:
            return {"error": "replicate 1.0.7 environment unavailable"}
        cmd, env = prepared
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                env=env,
                cwd=tempfile.gettempdir(),
                capture_output=True,
                text=True,
                timeout=scenario.timeout_s / (4 if self.quick else 1),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {scenario.timeout_s:g} s"}
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
        for line in reversed(proc.stdout.strip().splitlines()):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                parsed["elapsed_s"] = round(elapsed, 2)
                return parsed
        return {"error": "the scenario printed no JSON result"}

    def run_joint(self, scenario: Scenario, attempt: int) -> dict[str, dict[str, Any]]:
        """One process measuring ``scenario.joint``; its result split per implementation."""
        suffix = f" (attempt {attempt + 1}/{self.repeat})" if self.repeat > 1 else ""
        names = " + ".join(IMPL_LABELS[impl] for impl in scenario.joint)
        log(f"  {scenario.name} [{names}]{suffix} ...")
        result = self.run_one(scenario, ",".join(scenario.joint))
        joint = result.get("joint")
        if not isinstance(joint, dict):
            if "error" not in result:
                result = {"error": "the scenario printed no joint result"}
            log(f"    failed: {result['error']}")
            return {impl: result for impl in scenario.joint}
        elapsed = result.get("elapsed_s")
        return {
            impl: {**joint[impl], "elapsed_s": elapsed}
            if impl in joint
            else {"error": f"no result for {impl}"}
            for impl in scenario.joint
        }

    def run(self, scenario: Scenario) -> dict[str, dict[str, Any]]:
        """Run every implementation, interleaved, ``repeat`` times; merge the attempts."""
        attempts: dict[str, list[dict[str, Any]]] = {impl: [] for impl in scenario.impls}
        for attempt in range(self.repeat):
            if scenario.joint and not any(
                attempts[impl] and "error" in attempts[impl][-1] for impl in scenario.joint
            ):
                for impl, result in self.run_joint(scenario, attempt).items():
                    attempts[impl].append(result)
            for impl in scenario.impls:
                if impl in scenario.joint:
                    continue
                if attempts[impl] and "error" in attempts[impl][-1]:
                    continue  # it failed once; it will fail again
                suffix = f" (attempt {attempt + 1}/{self.repeat})" if self.repeat > 1 else ""
                log(f"  {scenario.name} [{IMPL_LABELS[impl]}]{suffix} ...")
                result = self.run_one(scenario, impl)
                if "error" in result:
                    log(f"    failed: {result['error']}")
                attempts[impl].append(result)
        per_impl = {impl: merge(scenario, runs) for impl, runs in attempts.items()}
        self.results[scenario.name] = per_impl
        return per_impl


def merge(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine repeated runs: the best ``value``, the worst memory growth, all attempts kept."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[-1]
    pick = min if scenario.lower_is_better else max
    best = dict(pick(good, key=lambda r: float(r["value"])))
    growths = [r["mem_growth_mib"] for r in good if r.get("mem_growth_mib") is not None]
    if growths:
        best["mem_growth_mib"] = max(growths)
    for name in scenario.lowest_fields:
        values = [float(r[name]) for r in good if isinstance(r.get(name), (int, float))]
        if values:
            best[name] = min(values)
    if len(runs) > 1:
        best["attempts"] = [
            {
                k: r.get(k)
                for k in ("value", "mem_growth_mib", *scenario.lowest_fields, "elapsed_s", "error")
                if k in r
            }
            for r in runs
        ]
    return best


@dataclass(frozen=True)
class External:
    """A separate benchmark module in ``benchmarks/`` exposing ``run(quick) -> dict``."""

    name: str
    module: str
    title: str
    ours_key: str  # the key of our figure in the module's "rates"


EXTERNALS: tuple[External, ...] = (
    External("sse", "bench_sse", "SSE decoding", "ours"),
    External("stream", "bench_stream", "full streaming path", "ours Prediction.stream()"),
    External("batch", "bench_batch", "batch runs against the local server", ""),
)


def run_external(ext: External, quick: bool, v107_python: Path | None) -> dict[str, Any]:
    """Run ``<module>.run(quick)`` in a fresh subprocess, pointed at our 1.0.7 interpreter."""
    if not (BENCH_DIR / f"{ext.module}.py").exists():
        return {"error": f"benchmarks/{ext.module}.py not present"}
    v107 = str(v107_python) if v107_python else ""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(BENCH_DIR)!r})\n"
        f"import bench_sse, {ext.module} as mod\n"
        f"if {v107!r}:\n"
        f"    bench_sse.V107_PYTHON = mod.V107_PYTHON = {v107!r}\n"
        f"print(json.dumps(mod.run({quick!r}), default=str))\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=ours_env(),
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
    try:
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"error": f"{ext.module} printed no JSON result"}


def external_checks(externals: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A check row for each external benchmark that states its own targets ("targets met")."""
    checks = []
    for ext in EXTERNALS:
        res = externals.get(ext.name)
        if res is None or ("targets met" not in res and "error" not in res):
            continue  # not run, or a benchmark without targets (reported only)
        met = res.get("targets met")
        checks.append(
            {
                "scenario": ext.name,
                "check": f"{ext.module}: its targets",
                "value": None,
                "target": "as stated",
                "status": "N/A" if met is None else ("PASS" if met else "FAIL"),
            }
        )
    return checks


# --------------------------------------------------------------------------------------------
# Reporting


def fmt(value: float | None, unit: str = "") -> str:
    """A figure with sensible precision."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}" if value else "0"
    return text + unit


def evaluate(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Check every target; one row per target."""
    checks = []
    for scenario in SCENARIOS:
        if scenario.name not in results:
            continue
        for target in scenario.targets:
            value = target.value(results[scenario.name])
            status = "N/A" if value is None else ("PASS" if target.passes(value) else "FAIL")
            checks.append(
                {
                    "scenario": scenario.name,
                    "check": target.label,
                    "value": value,
                    "target": target.describe(),
                    "status": status,
                }
            )
    return checks


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table (first column left-aligned, the rest right-aligned)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        out = [str(cells[0]).ljust(widths[0])]
        out += [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def report(
    results: dict[str, dict[str, dict[str, Any]]],
    checks: list[dict[str, Any]],
    externals: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The human-readable report."""
    figure_rows: list[list[str]] = []
    for scenario in SCENARIOS:
        per_impl = results.get(scenario.name)
        if per_impl is None:
            continue
        better = "lower" if scenario.lower_is_better else "higher"
        fields = [("value", f"{scenario.unit} ({better} is better)"), *scenario.extra_fields]
        for i, (name, label) in enumerate(fields):
            cells = [scenario.title if i == 0 else "", label]
            for impl in ("ours", "v107", scenario.floor):
                cells.append(fmt(_figure(per_impl.get(impl), name)))
            figure_rows.append(cells)
    parts: list[str] = []
    if figure_rows:
        headers = ["scenario", "figure", "ours", "1.0.7", "httpx / floor"]
        parts.append(render_table(headers, figure_rows))
    if checks:
        check_rows = [
            [c["scenario"], c["check"], fmt(c["value"]), c["target"], c["status"]] for c in checks
        ]
        if parts:
            parts.append("")
        parts.append(render_table(["scenario", "check", "value", "target", "result"], check_rows))
    run_results = results.get("run", {})
    request_lines = []
    for impl in ("ours", "v107", "httpx"):
        res = run_results.get(impl, {})
        if "requests" in res:
            first = ", ".join(res["requests"]) or "none"
            again = ", ".join(res.get("requests_second_run", [])) or "none"
            request_lines.append(f"  {IMPL_LABELS[impl]:<6} first run: {first}")
            if again != first:
                request_lines.append(f"  {'':<6} next runs: {again}")
    if request_lines:
        parts += ["", "Requests sent by run():", *request_lines]
    errors = [
        f"  {name} [{IMPL_LABELS[impl]}]: {res['error']}"
        for name, per_impl in results.items()
        for impl, res in per_impl.items()
        if "error" in res
    ]
    for ext in EXTERNALS:
        ext_res = (externals or {}).get(ext.name)
        if ext_res is None:
            continue
        if "error" in ext_res:
            errors.append(f"  {ext.name}: {ext_res['error']}")
            continue
        if "table" in ext_res:  # a benchmark that reports its own table (bench_batch)
            parts += ["", f"{ext.title}: {ext.module}.py"]
            parts.append(render_table(ext_res["headers"], ext_res["table"]))
            parts += [f"  {note}" for note in ext_res.get("notes", [])]
            continue
        rates = ext_res.get("rates", {})
        walls = ext_res.get("wall rates", {})
        ours_rate = rates.get(ext.ours_key)
        events = ext_res.get("events")
        parts += [
            "",
            f"{ext.title}: {events:,} events, {ext.module}.py"
            if isinstance(events, int)
            else f"{ext.title}: {ext.module}.py",
        ]
        rows = []
        for name, rate in rates.items():
            ratio = ours_rate / rate if ours_rate and rate and name != ext.ours_key else None
            row = [name, fmt(rate), "-" if name == ext.ours_key else fmt(ratio, "x")]
            if walls:
                row.insert(2, fmt(walls.get(name)))
            rows.append(row)
        headers = ["contender", "events/s", "ours / it"]
        if walls:
            headers = ["contender", "events/s (CPU)", "events/s (wall)", "ours / it"]
        parts.append(render_table(headers, rows))
    if errors:
        parts += ["", "Failed runs:", *errors]
    return "\n".join(parts)


def versions_line(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Which replicate and httpx versions each implementation ran with."""
    seen: dict[str, str] = {}
    for per_impl in results.values():
        for impl, res in per_impl.items():
            if impl in seen or "error" in res:
                continue
            parts = []
            if impl != "httpx" and res.get("replicate_version"):
                parts.append(f"replicate {res['replicate_version']}")
            if res.get("httpx_version"):
                parts.append(f"httpx {res['httpx_version']}")
            if parts:
                seen[impl] = ", ".join(parts)
    return "; ".join(f"{IMPL_LABELS[i]}: {v}" for i, v in seen.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark our client against replicate 1.0.7 and raw httpx."
    )
    parser.add_argument(
        "--quick", action="store_true", help="short mode for CI (reports, never fails)"
    )
    parser.add_argument("--json", metavar="PATH", help="also save all results as JSON")
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated scenarios to run: "
        + ", ".join([*(s.name for s in SCENARIOS), *(e.name for e in EXTERNALS)]),
    )
    parser.add_argument(
        "--v107-venv",
        metavar="DIR",
        default=os.environ.get("REPLICATE_BENCH_V107_VENV", str(DEFAULT_VENV)),
        help="virtual environment for replicate 1.0.7 (created if missing; default .bench/v107)",
    )
    parser.add_argument(
        "--no-sse",
        action="store_true",
        help="skip the SSE and streaming benchmarks (bench_sse.py, bench_stream.py)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="run each scenario's implementations N times, interleaved, keeping the best "
        "figure and the worst memory growth (default: 1 with --quick, else 2)",
    )
    args = parser.parse_args(argv)

    wanted = {s.strip() for s in args.only.split(",")} if args.only else None
    known = {s.name for s in SCENARIOS} | {e.name for e in EXTERNALS}
    if wanted and not wanted <= known:
        parser.error(f"unknown scenario(s): {', '.join(sorted(wanted - known))}")

    started = time.perf_counter()
    try:
        v107_python: Path | None = ensure_v107(Path(args.v107_venv))
    except (OSError, subprocess.CalledProcessError, SystemExit) as exc:
        log(f"replicate 1.0.7 unavailable: {exc}")
        v107_python = None

    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 2)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    runner = Runner(quick=args.quick, v107_python=v107_python, repeat=repeat)
    for scenario in SCENARIOS:
        if wanted is None or scenario.name in wanted:
            log(f"{scenario.name}:")
            runner.run(scenario)
    externals: dict[str, dict[str, Any]] = {}
    for ext in EXTERNALS:
        if not args.no_sse and (wanted is None or ext.name in wanted):
            log(f"{ext.name} ({ext.module}.py):")
            externals[ext.name] = run_external(ext, args.quick, v107_python)

    checks = evaluate(runner.results) + external_checks(externals)
    mode = "quick" if args.quick else "full"
    print(
        f"replicate benchmarks ({mode} mode, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.perf_counter() - started:.0f} s)"
    )
    print(versions_line(runner.results))
    print(report(runner.results, checks, externals))

    failed = [c for c in checks if c["status"] != "PASS"]
    if args.json:
        payload = {
            "mode": mode,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "v107_python": str(v107_python) if v107_python else None,
            "results": runner.results,
            "checks": checks,
            "externals": externals,
            "passed": not failed,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        log(f"results saved to {args.json}")
    if failed and not args.quick:
        print(f"\n{len(failed)} target(s) not met (FAIL or not measurable).")
        return 1
    if failed:
        print(f"\n{len(failed)} target(s) not met; quick mode reports only.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
