"""Fixtures: a local server on a free loopback port, raw httpx clients for it, and a store on
a database file for store-level tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from replicate.local.server import LocalServer
from replicate.local.store import Store

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


@pytest.fixture
def db(tmp_path: Path) -> str:
    """The path of a database file of the test's own."""
    return str(tmp_path / "db.sqlite")


@pytest.fixture
def store(db: str) -> Iterator[Store]:
    """A store on ``db``, closed after the test."""
    s = Store(db)
    yield s
    s.close()
