"""Memory: long URLs, large bodies and many requests leave the server's RSS (its own process,
test controls on, so the request log is live) within a stated bound. Figures are printed
(``-s``) and recorded in tests/hardening/README.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .support import rss_bytes
from .test_load import Served

MB = 1024 * 1024
WARM_UP = 200
REQUESTS = 2000
URL_BYTES = 7000  # under h11's 16 KiB request-head limit
BODY_BYTES = 12 * MB  # above the 8 MiB default body cap
BODIES = 12
#: Allowed RSS growth after a warm-up for the whole test (2,000 long-URL requests, 12
#: oversized bodies, 200 predictions). Before the request log was bounded, 10k long URLs
#: grew it by ~590 MB; a body read whole costs its size per request in flight.
GROWTH_BOUND = 16 * MB


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("memory"))
    yield s
    s.close()


def long_urls(http: httpx.Client, n: int, start: int) -> None:
    pad = "x" * URL_BYTES
    for i in range(start, start + n):
        path = f"/v1/predictions/{pad}{i}" if i % 2 else f"/v1/models/{pad}/{i}?q={pad}"
        headers = {} if i % 3 == 0 else {"Authorization": "Bearer r8_load"}
        assert http.get(path, headers=headers).status_code in (401, 404)


@pytest.mark.timeout(600)
def test_long_urls_big_bodies_and_many_requests_keep_rss_bounded(
    served: Served, tmp_path: Path
) -> None:
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        long_urls(http, WARM_UP, 0)
        before = served.rss()
        long_urls(http, REQUESTS, WARM_UP)
        after_urls = served.rss()
        body = json.dumps({"input": {"n": 1, "pad": "y" * BODY_BYTES}}).encode()
        for _ in range(BODIES):
            r = http.post(
                "/v1/models/load/echo/predictions",
                content=body,
                headers={"Authorization": "Bearer r8_load", "Content-Type": "application/json"},
            )
            assert r.status_code == 413, r.text[:200]
        after_bodies = served.rss()
        auth = {"Authorization": "Bearer r8_load", "Prefer": "wait"}
        for i in range(WARM_UP):
            r = http.post(
                "/v1/models/load/echo/predictions", json={"input": {"n": i}}, headers=auth
            )
            assert r.json()["output"] == i
        after = served.rss()
    print(
        f"\nmemory: server RSS {before / MB:.1f} MB after warm-up; "
        f"{after_urls / MB:.1f} MB after {REQUESTS} long-URL requests "
        f"({URL_BYTES} B each); {after_bodies / MB:.1f} MB after {BODIES} bodies of "
        f"{BODY_BYTES // MB} MB; {after / MB:.1f} MB after {WARM_UP} predictions "
        f"(growth {(after - before) / MB:+.1f} MB; test process {rss_bytes() / MB:.1f} MB)"
    )
    assert after_urls - before < GROWTH_BOUND
    assert after - before < GROWTH_BOUND
