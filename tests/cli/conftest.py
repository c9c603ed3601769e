"""CLI tests run the real console script as a subprocess against a local server."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("starlette")


@pytest.fixture(scope="module")
def cli_server() -> Iterator[Any]:
    """One local server (in this process) for the CLI subprocesses to talk to."""
    from replicate.local import LocalServer

    with LocalServer(token="cli-test-token") as server:
        yield server


def replicate_exe() -> list[str]:
    found = shutil.which("replicate", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "replicate"]


class CLI:
    """Runs ``replicate ...`` with the environment pointing at the test server."""

    def __init__(self, env: dict[str, str], cwd: pathlib.Path) -> None:
        self.env = env
        self.cwd = cwd

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
        return subprocess.run(
            [*replicate_exe(), *args],
            env=env if env is not None else self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*replicate_exe(), *args],
            env=self.env,
            cwd=self.cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **kwargs,
        )


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
    env["COLUMNS"] = "120"
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture
def cli(cli_server: Any, tmp_path: pathlib.Path) -> CLI:
    env = base_env()
    env["REPLICATE_BASE_URL"] = cli_server.base_url
    env["REPLICATE_API_TOKEN"] = cli_server.api_token
    env["HOME"] = str(tmp_path)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return CLI(env, tmp_path)
