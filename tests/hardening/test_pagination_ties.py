"""Rows with equal ``created_at``: keyset pagination tie-breaks on ``id``, so walking the
pages forward and backward yields every row exactly once, in order (without the tie-break,
rows sharing a timestamp with a page boundary are skipped or repeated)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from replicate.local.server import LocalServer
from replicate.local.util import new_id

AUTH = {"Authorization": "Bearer hardening"}
ROWS = 23
PAGE = 5


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True, demo_models=False) as s:
        s.set_limits(page_sizes={"predictions": PAGE, "files": PAGE})
        yield s


def walk(http: httpx.Client, path: str) -> tuple[list[str], list[str]]:
    """Ids walking ``next`` from the first page, then ``previous`` back from the last."""
    forward: list[str] = []
    pages = []
    url: str | None = path
    while url:
        assert len(pages) <= ROWS, "the pages never end (a cursor repeats)"
        page = http.get(url).json()
        pages.append(page)
        forward += [r["id"] for r in page["results"]]
        url = page["next"]
    backward: list[str] = list(reversed([r["id"] for r in pages[-1]["results"]]))
    url = pages[-1]["previous"]
    for _ in range(ROWS + 1):
        if not url:
            break
        page = http.get(url).json()
        backward += list(reversed([r["id"] for r in page["results"]]))
        url = page["previous"]
    return forward, list(reversed(backward))


def test_predictions_with_equal_created_at_paginate_exactly_once(server: LocalServer) -> None:
    core = server.core
    assert core is not None
    version = server.register("ties/m", lambda: "x")
    t = core.clock.now()
    ids = []
    for _ in range(ROWS):
        pid = new_id()
        ids.append(pid)
        core.store.insert_prediction(
            {
                "id": pid,
                "account": core.config.username,
                "model": "ties/m",
                "version": version,
                "status": "succeeded",
                "input": {},
                "created_at": t,  # all the same instant
                "completed_at": t,
            }
        )
    with httpx.Client(base_url=server.base_url, headers=AUTH) as http:
        forward, backward = walk(http, "/v1/predictions")
    expected = sorted(ids, reverse=True)  # newest first: created_at DESC, then id DESC
    assert forward == expected
    assert backward == expected


def test_files_with_equal_created_at_paginate_exactly_once(server: LocalServer) -> None:
    core = server.core
    assert core is not None
    with httpx.Client(base_url=server.base_url, headers=AUTH) as http:
        ids = [
            http.post("/v1/files", files={"content": (f"f{i}.txt", f"{i}".encode())}).json()["id"]
            for i in range(ROWS)
        ]
        core.store.execute("UPDATE files SET created_at = 1700000000.5 WHERE kind = 'upload'")
        forward, backward = walk(http, "/v1/files")
    expected = sorted(ids, reverse=True)
    assert forward == expected
    assert backward == expected
