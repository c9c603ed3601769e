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


@pytest.fixture(scope="module")
def html_server() -> Iterator[str]:
    """A web server that is not the Replicate API: every path is an HTML 404 page."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def _page(self) -> None:
            body = b"<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = do_QUERY = _page

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class InProcess:
    """Runs ``replicate.cli.main`` in this process; returns (exit code, stdout, stderr)."""

    def __init__(self, capsys: Any, monkeypatch: Any, env: dict[str, str]) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        for name in list(os.environ):
            if name.startswith("REPLICATE_"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    def __call__(
        self, *args: str, env: dict[str, str | None] | None = None
    ) -> tuple[int, str, str]:
        from replicate.cli import main

        with self.monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                if value is None:
                    patch.delenv(name, raising=False)
                else:
                    patch.setenv(name, value)
            self.capsys.readouterr()
            code = main(list(args))
            out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def run_main(cli_server: Any, capsys: Any, monkeypatch: Any, tmp_path: pathlib.Path) -> InProcess:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "120")
    return InProcess(
        capsys,
        monkeypatch,
        {"REPLICATE_BASE_URL": cli_server.base_url, "REPLICATE_API_TOKEN": cli_server.api_token},
    )
