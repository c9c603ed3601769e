"""The model's interpreter and its Cog schema, found without ``cog build``.

The schema comes from Cog's own inspector, run by ``schema_probe.py`` (a standalone script
beside this module) inside the model's interpreter; a schema left by ``cog build`` in
``.cog/openapi_schema.json`` is used as-is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import CogDirError

__all__ = ["find_python", "generate_schema", "inspect_model", "worker_env"]

PROBE_SCRIPT = Path(__file__).with_name("schema_probe.py")
_PROBE_MARKER = "@@COG_SCHEMA@@"


def find_python(directory: str | os.PathLike[str], python: str | None = None) -> str:
    """The interpreter for a model: ``python`` if given, else ``DIR/.venv``, else ours."""
    if python:
        resolved = shutil.which(python) if os.sep not in python else python
        if not resolved or not os.path.exists(resolved):
            raise CogDirError(f"python interpreter {python!r} not found")
        return os.path.abspath(resolved)
    for candidate in (
        Path(directory) / ".venv" / "bin" / "python",
        Path(directory) / ".venv" / "Scripts" / "python.exe",
    ):
        if candidate.exists():
            return str(candidate.absolute())
    return sys.executable


def worker_env(python: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the model's processes: its interpreter's bin dir first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in {"REPLICATE_API_TOKEN"}}
    bin_dir = str(Path(python).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    if extra:
        env.update(extra)
    return env


def _run_probe(args: list[str], cwd: Path, python: str, timeout: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            [python, str(PROBE_SCRIPT), *args],
            cwd=cwd,
            env=worker_env(python),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CogDirError(f"{cwd}: generating the schema took longer than {timeout:g}s") from None
    _, marker, payload = proc.stdout.rpartition(_PROBE_MARKER)
    if not marker:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        hint = ""
        if "No module named 'cog'" in (proc.stderr or ""):
            hint = f" (the interpreter {python} has no `cog` package: pip install 'replicate[cog]')"
        raise CogDirError(f"{cwd}: could not inspect the model{hint}: " + " | ".join(tail))
    result: dict[str, Any] = json.loads(payload.strip().splitlines()[0])
    return result


def generate_schema(
    directory: str | os.PathLike[str],
    ref: str,
    *,
    python: str | None = None,
    train: bool = False,
    timeout: float = 120.0,
) -> tuple[dict[str, Any], str]:
    """The Cog OpenAPI document for ``ref`` in ``directory`` and the model's Cog version.

    Uses ``DIR/.cog/openapi_schema.json`` (from ``cog build``) as-is when present;
    otherwise runs Cog's inspector in the model's interpreter. Raises
    :class:`CogDirError` with the model's error (e.g. an import error) on failure.
    """
    info = inspect_model(directory, ref, python=python, train=train, timeout=timeout)
    return info["schema"], str(info.get("cog_version"))


def inspect_model(
    directory: str | os.PathLike[str],
    ref: str,
    *,
    python: str | None = None,
    train: bool = False,
    timeout: float = 120.0,
    packages: Iterable[str] = (),
) -> dict[str, Any]:
    """What the probe found: ``schema``, ``cog_version`` and ``missing_packages``.

    ``packages`` are the distributions ``cog.yaml`` asks for; those the interpreter lacks
    come back in ``missing_packages``. Raises :class:`CogDirError` when the model cannot
    be inspected.
    """
    root = Path(directory).resolve()
    interpreter = find_python(root, python)
    extra = ["--packages", ",".join(packages)] if packages else []
    prebuilt = root / ".cog" / "openapi_schema.json"
    if prebuilt.is_file() and not train:
        info = _run_probe(["--version", *extra], root, interpreter, timeout)
        info["schema"] = json.loads(prebuilt.read_text(encoding="utf-8"))
        return info
    info = _run_probe([ref, *(["--train"] if train else []), *extra], root, interpreter, timeout)
    if not info.get("ok"):
        raise CogDirError(f"{root}: invalid predictor {ref!r}: {info.get('error')}")
    return info
