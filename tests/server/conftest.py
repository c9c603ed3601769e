"""Fixtures: a local server on a free loopback port, and raw httpx clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from replicate.local.server import LocalServer

AUTH = {"Authorization": "Bearer test-token"}


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """One in-memory server with test controls for the whole session."""
    with LocalServer(test_controls=True) as s:
        yield s


@pytest.fixture(scope="session")
def http(server: LocalServer) -> Iterator[httpx.Client]:
    """An authenticated httpx client for the session server."""
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as c:
        yield c


@pytest.fixture
def fresh() -> Iterator[LocalServer]:
    """A private server for tests that need a clean state."""
    with LocalServer(test_controls=True) as s:
        yield s
