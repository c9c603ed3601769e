"""Webhooks: signed deliveries, event order and throttling, filters, retries with a stable id."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from replicate.local.server import LocalServer

from .conftest import AUTH
from .helpers import Receiver, verify_signature, wait_status, wait_until


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def create_hello_with_completed_webhook(
    http: httpx.Client, receiver: Receiver, text: str
) -> dict[str, Any]:
    """Create a hello-world prediction whose ``completed`` webhook goes to ``receiver``."""
    return http.post(
        "/v1/predictions",
        json={
            "version": "replicate/hello-world",
            "input": {"text": text},
            "webhook": receiver.url,
            "webhook_events_filter": ["completed"],
        },
    ).json()


def test_signed_events_in_order(
    server: LocalServer, http: httpx.Client, receiver: Receiver
) -> None:
    secret = http.get("/v1/webhooks/default/secret").json()["key"]
    p = http.post(
        "/v1/models/local-demo/stream-text/predictions",
        json={
            "input": {"prompt": "a b c d", "max_tokens": 12, "delay_ms": 100},
            "webhook": receiver.url,
        },
    ).json()
    wait_status(http, p["id"], {"succeeded"})
    reqs = receiver.wait_for(lambda rs: any(r["json"]["status"] == "succeeded" for r in rs))
    assert reqs[0]["json"]["status"] == "starting"
    assert reqs[-1]["json"]["status"] == "succeeded"
    assert reqs[-1]["json"] == http.get(f"/v1/predictions/{p['id']}").json()
    updates = reqs[1:-1]
    assert updates, "expected output/logs deliveries"
    # the throttle, measured where it is enforced: when each update delivery went out
    sent = [
        a["sent_at"]
        for a in server.webhook_deliveries()
        if a["prediction_id"] == p["id"] and a["event"] in ("output", "logs")
    ]
    assert len(sent) == len(updates)
    for a, b in itertools.pairwise(sent):
        assert b - a >= 0.5, "output/logs deliveries closer than 500 ms"
    ids = set()
    for r in reqs:
        h = r["headers"]
        assert h["content-type"] == "application/json"
        assert h["webhook-id"].startswith("msg_")
        assert h["webhook-timestamp"].isdigit()
        assert verify_signature(secret, h, r["body"])
        ids.add(h["webhook-id"])
    assert len(ids) == len(reqs)
    # outputs in snapshots only grow
    lens = [len(r["json"]["output"] or []) for r in reqs]
    assert lens == sorted(lens)


def test_completed_filter_gives_one_delivery(http: httpx.Client, receiver: Receiver) -> None:
    p = http.post(
        "/v1/models/local-demo/stream-text/predictions",
        json={
            "input": {"prompt": "x y", "max_tokens": 5, "delay_ms": 1},
            "webhook": receiver.url,
            "webhook_events_filter": ["completed"],
        },
    ).json()
    wait_status(http, p["id"], {"succeeded"})
    reqs = receiver.wait_for(lambda rs: len(rs) >= 1)
    # another prediction's completed webhook marks the end of the outbox for this one
    q = create_hello_with_completed_webhook(http, receiver, "z")
    reqs = receiver.wait_for(lambda rs: any(r["json"]["id"] == q["id"] for r in rs))
    mine = [r for r in reqs if r["json"]["id"] == p["id"]]
    assert len(mine) == 1 and mine[0]["json"]["status"] == "succeeded"


def test_retries_keep_webhook_id() -> None:
    receiver = Receiver()
    receiver.statuses = [500, 500]
    try:
        with (
            LocalServer(webhook_backoff_scale=0.01) as s,
            httpx.Client(base_url=s.base_url, headers=AUTH) as c,
        ):
            p = create_hello_with_completed_webhook(c, receiver, "r")
            reqs = receiver.wait_for(lambda rs: len(rs) >= 3)
            assert [r["status"] for r in reqs] == [500, 500, 200]
            assert len({r["headers"]["webhook-id"] for r in reqs}) == 1
            assert all(verify_signature(s.webhook_secret, r["headers"], r["body"]) for r in reqs)
            attempts = wait_until(
                lambda: (
                    [
                        a
                        for a in s.webhook_deliveries()
                        if a["prediction_id"] == p["id"] and a["status"] == 200
                    ]
                    and [a for a in s.webhook_deliveries() if a["prediction_id"] == p["id"]]
                )
            )
            assert [a["status"] for a in attempts] == [500, 500, 200]
    finally:
        receiver.close()


def test_invalid_webhook_url_422(http: httpx.Client) -> None:
    for bad in ("not a url", "ftp://x/y", "/relative"):
        r = http.post(
            "/v1/predictions",
            json={"version": "replicate/hello-world", "input": {"text": "a"}, "webhook": bad},
        )
        assert r.status_code == 422, bad
    r = http.post(
        "/v1/predictions",
        json={
            "version": "replicate/hello-world",
            "input": {"text": "a"},
            "webhook": "http://127.0.0.1:1/x",
            "webhook_events_filter": ["bogus"],
        },
    )
    assert r.status_code == 422


def test_fixed_secret() -> None:
    secret = "whsec_" + "A" * 32
    with (
        LocalServer(webhook_secret=secret) as s,
        httpx.Client(base_url=s.base_url, headers=AUTH) as c,
    ):
        assert c.get("/v1/webhooks/default/secret").json() == {"key": secret}
