"""Integration fixtures: the library's client against a local server over real sockets."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

import pytest

import replicate
from replicate.local.server import LocalServer


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """An in-memory server with test controls, shared by a test module."""
    with LocalServer(test_controls=True) as s:
        yield s


@pytest.fixture
def client(server: LocalServer) -> replicate.Client:
    """A client pointed at the server."""
    return replicate.Client(
        api_token=server.api_token, base_url=server.base_url, poll_interval=0.05
    )


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run a scenario through the sync and the async API."""
    return str(request.param)


@contextlib.contextmanager
def served(argv: list[str], *, stop_timeout: float = 30) -> Iterator[tuple[str, str]]:
    """Run a ``replicate serve`` command line in a subprocess until the block ends.

    Yields ``(base_url, token)`` from the ``REPLICATE_BASE_URL=`` and ``REPLICATE_API_TOKEN=``
    lines the server prints once it listens; on exit the server is terminated and must exit 0.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    base = token = None
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if line.strip().startswith("REPLICATE_BASE_URL="):
            base = line.strip().split("=", 1)[1]
        if line.strip().startswith("REPLICATE_API_TOKEN="):
            token = line.strip().split("=", 1)[1]
            break
    assert base and token is not None, "".join(printed)
    try:
        yield base, token
    finally:
        proc.terminate()
        assert proc.wait(timeout=stop_timeout) == 0
