"""Contract tests of the local server against the official OpenAPI spec and the real recordings.

Shared pieces: where the spec and recordings are (``tests/data``), a local
server over real sockets with a fixed Bearer token, and the allow-list (``allowlist.py``): every
BUG entry marks its test ``xfail(strict=True)`` and every EXCLUSION entry skips it, with the
entry's reason shown in the report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from replicate.local.server import LocalServer

from .allowlist import TEST_ENTRIES

REPO = Path(__file__).resolve().parents[2]


#: The official OpenAPI spec and the real recordings, copied into ``tests/data`` (see its README).
SPEC_PATH = REPO / "tests" / "data" / "openapi.json"
RECORDINGS_DIR = REPO / "tests" / "data" / "recordings"
TOKEN = "r8_contract_test_token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A fresh in-memory server per test module, accepting only ``TOKEN`` (fixed-token mode)."""
    with LocalServer(token=TOKEN, test_controls=True) as s:
        yield s


def mounted_paths(server: LocalServer) -> set[str]:
    """The route templates the running app serves (``/v1/...``), to tell "not mounted yet" apart."""
    app = getattr(getattr(server, "_server", None), "config", None)
    app = getattr(app, "app", None)
    return {getattr(route, "path", "") for route in getattr(app, "routes", [])}


def test_key(item: pytest.Item) -> str:
    """The allow-list key of a test: ``<file>::<name with parameters>``."""
    return f"{item.path.name}::{item.name}"


#: Test files of this directory with collected items (before any ``-k`` deselection).
COLLECTED_FILES: set[str] = set()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply the allow-list: BUG -> xfail(strict=True), EXCLUSION -> skip."""
    for item in items:
        if "tests/contract/" not in item.nodeid.replace(os.sep, "/"):
            continue
        COLLECTED_FILES.add(item.path.name)
        # Schemathesis items share one node id; their name carries the operation.
        entry = TEST_ENTRIES.get(test_key(item))
        if entry is None:
            continue
        entry.matched = True
        if entry.kind == "BUG":
            item.add_marker(pytest.mark.xfail(reason=f"[{entry.id}] {entry.reason}", strict=True))
        elif entry.kind == "EXCLUSION":
            item.add_marker(pytest.mark.skip(reason=f"[{entry.id}] {entry.reason}"))
