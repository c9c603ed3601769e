"""The OFFICIAL replicate 1.0.7 client against the local server, plain HTTP and ``--tls``.

replicate 1.0.7 is installed from the package registry into its own virtual environment, the
way the benchmarks install it (``benchmarks/run.py``'s ``ensure_v107``; created once, at
``.bench/v107``, and reused), and treated as a black box: ``official_client_tour.py`` runs with
that interpreter as a subprocess, so nothing of 1.0.7 is imported here. The tour goes through
every namespace, sync and async, and reports each call; any exception fails the test.

Installing needs the package registry once. When it is unreachable,
``test_official_client_is_installed`` fails and says so (in CI too: never a silent skip); the
tours then skip, pointing at it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from replicate.local.server import LocalServer

REPO = Path(__file__).resolve().parents[2]
TOUR = Path(__file__).with_name("official_client_tour.py")
VENV = REPO / ".bench" / "v107"
#: Calls the tour must make (so that it cannot shrink unnoticed).
MUST_CALL = {
    "models.get", "models.list", "model.versions.list", "model.versions.get",
    "run owner/name", "run owner/name:version", "stream", "run make-file",
    "predictions.create version", "prediction.status is starting", "predictions.get",
    "predictions.list", "predictions.cancel", "files.create", "files.get", "files.list",
    "files.delete", "collections.list", "collections.get", "hardware.list", "accounts.current",
    "webhooks.default.secret", "deployments.create", "deployments.get", "deployments.list",
    "deployments.update", "deployment.predictions.create", "trainings.create", "trainings.get",
    "trainings.list", "trainings.cancel", "trained version runs",
}  # fmt: skip


@cache
def _bench_run() -> Any:
    """``benchmarks/run.py`` as a module (it holds the one way 1.0.7 is installed)."""
    spec = importlib.util.spec_from_file_location("_bench_run", REPO / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


@cache
def official_python() -> tuple[Path | None, str]:
    """The 1.0.7 interpreter (installed on first use), or None and why it could not be."""
    try:
        return _bench_run().ensure_v107(VENV), ""
    except (SystemExit, Exception) as exc:  # ensure_v107 exits when pip fails
        return None, f"{type(exc).__name__}: {exc}"


def test_official_client_is_installed() -> None:
    """replicate 1.0.7 installs from the package registry (needs it reachable once)."""
    python, why = official_python()
    assert python is not None, (
        f"could not install replicate==1.0.7 into {VENV} ({why}). The official-client tests "
        "need the package registry (PyPI) once; the environment is reused afterwards."
    )


def run_tour(server: LocalServer, *, tls: bool) -> dict[str, Any]:
    python, why = official_python()
    if python is None:
        pytest.skip(
            f"replicate 1.0.7 is not installed (see test_official_client_is_installed): {why}"
        )
    env = _bench_run().v107_env()
    env.pop("VIRTUAL_ENV", None)
    for key in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        env.pop(key, None)
    env.update(
        REPLICATE_BASE_URL=server.base_url,
        REPLICATE_API_TOKEN=server.api_token,
        TOUR_TLS="1" if tls else "0",
        TOUR_ID="tls" if tls else "plain",
    )
    if tls:
        assert server.ca_file is not None
        env["SSL_CERT_FILE"] = server.ca_file
    proc = subprocess.run(
        [str(python), str(TOUR)],
        env=env,
        cwd=tempfile.gettempdir(),  # never this repository's package
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stdout.strip(), f"the tour printed nothing (exit {proc.returncode}):\n{proc.stderr}"
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["returncode"] = proc.returncode
    return report


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls"])
def test_official_client_through_every_namespace(tls: bool) -> None:
    with LocalServer(tls=tls) as server:
        report = run_tour(server, tls=tls)
    assert report["version"] == "1.0.7"
    calls = report["calls"]
    failed = [f"{c['call']}: {c['detail']}" for c in calls if not c["ok"]]
    assert not failed, "replicate 1.0.7 failed on:\n  " + "\n  ".join(failed)
    assert report["returncode"] == 0
    names = {c["call"] for c in calls}
    assert names >= MUST_CALL, sorted(MUST_CALL - names)
    assert {f"async {n}" for n in ("models.get", "stream", "run make-file")} <= names
    by_name = {c["call"]: c["detail"] for c in calls}
    # Over TLS file outputs are https URLs, so 1.0.7 gives a file object that reads.
    expected = "FileOutput read" if tls else "URL string (plain http)"
    assert by_name["run make-file"] == f"str {expected!r}"
