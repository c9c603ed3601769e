"""Tests of the benchmark harness logic (benchmarks/run.py) and of one scenario end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_run()


def _scenario(name: str):  # type: ignore[no-untyped-def]
    return next(s for s in bench.SCENARIOS if s.name == name)


@pytest.mark.parametrize(
    ("ours", "v107", "status"),
    [(100.0, 200.0, "PASS"), (121.0, 200.0, "FAIL"), (120.0, 200.0, "PASS"), (None, 200.0, "N/A")],
)
def test_lower_is_better_ratio_target(ours: float | None, v107: float, status: str) -> None:
    results = {
        "import_time": {
            "ours": {"error": "boom"} if ours is None else {"value": ours},
            "v107": {"value": v107},
            "httpx": {"value": 1.0},
        }
    }
    checks = bench.evaluate(results)
    assert [c["status"] for c in checks] == [status]


def test_higher_is_better_targets_use_each_denominator() -> None:
    results = {
        "predictions_get": {
            "ours": {"value": 1100.0},
            "v107": {"value": 1000.0},
            "httpx": {"value": 1400.0},
        }
    }
    checks = {c["check"]: c for c in bench.evaluate(results)}
    assert checks["ours / 1.0.7 calls/s"]["status"] == "PASS"
    assert checks["ours / 1.0.7 calls/s"]["value"] == pytest.approx(1.1)
    assert checks["ours / httpx calls/s"]["status"] == "FAIL"  # 0.786 < 0.95


def test_absolute_memory_target() -> None:
    results = {
        "upload": {
            "ours": {"value": 100.0, "mem_growth_mib": 16.5},
            "v107": {"value": 100.0, "mem_growth_mib": 200.0},
        }
    }
    checks = {c["check"]: c["status"] for c in bench.evaluate(results)}
    assert checks == {"ours peak memory growth": "FAIL", "ours / 1.0.7 throughput": "PASS"}


def test_merge_keeps_best_value_and_worst_memory() -> None:
    runs = [
        {"value": 10.0, "mem_growth_mib": 1.0},
        {"value": 12.0, "mem_growth_mib": 0.5},
        {"error": "crashed"},
    ]
    merged = bench.merge(_scenario("download"), runs)
    assert merged["value"] == 12.0
    assert merged["mem_growth_mib"] == 1.0
    assert len(merged["attempts"]) == 3
    lower = bench.merge(_scenario("async_run"), [{"value": 0.5}, {"value": 0.4}])
    assert lower["value"] == 0.4


def test_merge_of_only_failures_reports_the_error() -> None:
    assert bench.merge(_scenario("run"), [{"error": "x"}]) == {"error": "x"}


def test_report_shows_missing_figures_and_errors() -> None:
    results = {"run": {"ours": {"error": "ImportError: nope"}, "v107": {"value": 1000.0}}}
    text = bench.report(results, bench.evaluate(results), None)
    assert "n/a" in text
    assert "run [ours]: ImportError: nope" in text
    assert "N/A" in text


def test_scenario_runs_and_prints_one_json_result() -> None:
    """The raw-httpx side of a scenario runs in a subprocess and emits a sane JSON line."""
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "scenarios" / "predictions_get.py"),
            "--impl",
            "httpx",
            "--quick",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["scenario"] == "predictions_get"
    assert result["impl"] == "httpx"
    assert result["value"] > 0
    assert len(result["rounds"]) == 10


def test_scenario_check_failure_exits_non_zero(tmp_path: Path) -> None:
    """A scenario whose correctness check fails must not print a figure."""
    script = tmp_path / "bad.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'benchmarks' / 'scenarios')!r})\n"
        "from _common import check\n"
        "check(False, 'wrong output')\n"
        "print('{}')\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "wrong output" in proc.stderr
    assert proc.stdout == ""


def test_external_benchmarks_with_targets_become_checks() -> None:
    checks = bench.external_checks(
        {
            "sse": {"rates": {"ours": 2.0}},  # no targets: reported only
            "stream": {"rates": {"ours Prediction.stream()": 1.0}, "targets met": False},
        }
    )
    assert [(c["scenario"], c["status"]) for c in checks] == [("stream", "FAIL")]
    failed = bench.external_checks({"stream": {"error": "ImportError: x"}})
    assert [c["status"] for c in failed] == ["N/A"]


def test_report_renders_external_rates_against_ours() -> None:
    externals = {"sse": {"events": 10, "rates": {"ours": 200.0, "httpx-sse": 50.0}}}
    text = bench.report({}, [], externals)
    assert "SSE decoding" in text
    assert "4x" in text
    assert "scenario  figure" not in text  # no empty tables


def test_server_targets_compare_with_the_floor() -> None:
    results = {
        "server": {
            "ours": {"value": 95.0, "p50_ms": 10.0, "p99_ms": 13.0},
            "floor": {"value": 100.0, "p50_ms": 9.0, "p99_ms": 10.0},
        }
    }
    checks = {c["check"]: c for c in bench.evaluate(results)}
    assert checks["ours / floor predictions/s"]["status"] == "PASS"  # 0.95 >= 0.9
    assert checks["ours / floor p99 latency"]["status"] == "FAIL"  # 1.3 > 1.25
    text = bench.report(results, list(checks.values()), None)
    assert "p99 latency (ms)" in text and "httpx / floor" in text


def test_merge_keeps_the_lowest_latencies() -> None:
    runs = [
        {"value": 10.0, "p50_ms": 3.0, "p99_ms": 9.0},
        {"value": 12.0, "p50_ms": 4.0, "p99_ms": 8.0},
    ]
    merged = bench.merge(_scenario("server"), runs)
    assert (merged["value"], merged["p50_ms"], merged["p99_ms"]) == (12.0, 3.0, 8.0)


def test_joint_implementations_run_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def run_one(self, scenario, impl):  # type: ignore[no-untyped-def]
        calls.append(impl)
        if impl == "ours,httpx":
            return {"joint": {"ours": {"value": 9.0}, "httpx": {"value": 10.0}}, "elapsed_s": 1}
        return {"value": 5.0}

    monkeypatch.setattr(bench.Runner, "run_one", run_one)
    runner = bench.Runner(quick=True, v107_python=None, repeat=2)
    results = runner.run(_scenario("run_model"))
    assert calls == ["ours,httpx", "v107", "ours,httpx", "v107"]
    assert {impl: r["value"] for impl, r in results.items()} == {
        "ours": 9.0,
        "v107": 5.0,
        "httpx": 10.0,
    }
    checks = bench.evaluate(runner.results)
    assert [(c["check"], c["status"]) for c in checks] == [("ours / httpx runs/s", "PASS")]


def test_a_failed_joint_run_fails_each_of_its_implementations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench.Runner, "run_one", lambda self, s, impl: {"error": "no server"})
    results = bench.Runner(quick=True, v107_python=None, repeat=2).run(_scenario("server"))
    assert results == {"ours": {"error": "no server"}, "floor": {"error": "no server"}}
