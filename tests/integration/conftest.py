"""Integration fixtures: the library's client against a local server over real sockets."""

from __future__ import annotations

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
