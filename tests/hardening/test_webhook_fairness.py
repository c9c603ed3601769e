"""Webhook receivers that hang or reset only use their own share: everyone else's webhooks
go out meanwhile. Retention removes a prediction's data from the webhook tables too."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from replicate.local.server import LocalServer
from replicate.local.webhooks import receiver_key

from .support import Receiver, wait_until

AUTH = {"Authorization": "Bearer hardening"}


class Hanging:
    """A receiver that accepts connections and never answers until ``close()``."""

    def __init__(self, reset: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.reset = reset
        self.conns: list[socket.socket] = []
        self.cond = threading.Condition()
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.reset:  # RST instead of an answer
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.recv(65536)
                conn.close()
            with self.cond:
                self.conns.append(conn)
                self.cond.notify_all()

    def wait_connections(self, n: int, timeout: float = 20) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.conns) >= n, timeout), len(self.conns)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True, webhook_backoff_scale=0.001) as s:
        s.set_limits(webhook_timeout=120)  # a hanging receiver hangs for the whole test
        yield s


def quick(server: LocalServer, webhook: str) -> str:
    r = httpx.post(
        f"{server.base_url}/v1/models/local-demo/sleep/predictions",
        json={
            "input": {"seconds": 0},
            "webhook": webhook,
            "webhook_events_filter": ["completed"],
        },
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_dead_receivers_do_not_delay_the_others(server: LocalServer) -> None:
    dead = [Hanging() for _ in range(8)]
    good = Receiver()
    try:
        for h in dead:
            quick(server, h.url)
        for h in dead:  # every dead receiver holds a delivery open
            h.wait_connections(1)
        pid = quick(server, good.url)
        got = good.wait_for(lambda rs: any(r["json"]["id"] == pid for r in rs), timeout=20)
        assert got[-1]["json"]["status"] == "succeeded"
        assert all(len(h.conns) == 1 for h in dead)  # they are all still hanging
    finally:
        for h in dead:
            h.close()
        good.close()


def test_one_dead_receiver_with_many_messages_uses_only_its_share(server: LocalServer) -> None:
    dead = Hanging()
    good = Receiver()
    core = server.core
    assert core is not None
    try:
        for _ in range(20):
            quick(server, dead.url)
        dead.wait_connections(core.webhooks.per_receiver)
        pid = quick(server, good.url)
        good.wait_for(lambda rs: any(r["json"]["id"] == pid for r in rs), timeout=20)
        assert len(dead.conns) == core.webhooks.per_receiver  # never more than its share
    finally:
        dead.close()
        good.close()


def test_a_receiver_that_resets_is_retried_then_given_up(server: LocalServer) -> None:
    resetting = Hanging(reset=True)
    good = Receiver()
    core = server.core
    assert core is not None
    try:
        bad = quick(server, resetting.url)
        pid = quick(server, good.url)
        good.wait_for(lambda rs: any(r["json"]["id"] == pid for r in rs), timeout=20)
        tries = len(core.webhooks.backoff) + 1
        wait_until(
            lambda: any(
                r["prediction_id"] == bad and r["state"] == "failed" for r in core.webhooks.outbox()
            ),
            what="the resetting receiver's message to be given up",
        )
        attempts = core.webhooks.attempts(bad)
        assert len(attempts) == tries
        assert all(a["status"] is None and a["error"] for a in attempts)
    finally:
        resetting.close()
        good.close()


def test_receiver_key() -> None:
    assert receiver_key("http://A.example:80/x") == receiver_key("http://a.example/y")
    assert receiver_key("https://a.example/x") != receiver_key("http://a.example/x")
    assert receiver_key("http://a.example:8080/x") != receiver_key("http://a.example/x")


def test_undelivered_messages_per_receiver_are_bounded(server: LocalServer) -> None:
    core = server.core
    assert core is not None
    core.webhooks.max_pending = 3
    dead = Hanging()
    try:
        pids = [quick(server, dead.url) for _ in range(8)]
        for pid in pids:
            server.wait_for_status(pid)
        rows = [r for r in core.webhooks.outbox() if r["url"] == dead.url]
        dropped = [r for r in rows if r["state"] == "dropped"]
        assert dropped and len(rows) - len(dropped) <= 3 + core.webhooks.per_receiver
    finally:
        dead.close()


def test_retention_removes_data_from_every_table(server: LocalServer) -> None:
    good = Receiver()
    core = server.core
    assert core is not None
    secret = "very-private-input-7f3a"
    try:
        r = httpx.post(
            f"{server.base_url}/v1/models/local-demo/stream-text/predictions",
            json={
                "input": {"prompt": secret, "max_tokens": 2, "delay_ms": 0},
                "webhook": good.url,
            },
            headers={**AUTH, "Prefer": "wait"},
        )
        pid = r.json()["id"]
        server.wait_for_status(pid)
        good.wait_for(lambda rs: any(x["json"]["status"] == "succeeded" for x in rs))
        wait_until(
            lambda: all(
                row["state"] in ("delivered", "dropped")
                for row in core.webhooks.outbox()
                if row["prediction_id"] == pid
            )
        )

        def holders() -> list[str]:
            found = []
            for table in ("predictions", "events", "webhook_outbox", "webhook_attempts"):
                for row in core.store.query(f"SELECT * FROM {table}"):
                    text = json.dumps({k: _text(v) for k, v in row.items()})
                    if secret in text:
                        found.append(table)
            return sorted(set(found))

        assert holders() == ["events", "predictions", "webhook_attempts", "webhook_outbox"]
        server.advance_clock("2h")  # retention (1h by default) applies
        assert holders() == []
        got = httpx.get(f"{server.base_url}/v1/predictions/{pid}", headers=AUTH).json()
        assert got["data_removed"] is True and got["input"] == {} and got["logs"] == ""
    finally:
        good.close()


def _text(v: Any) -> Any:
    return bytes(v).decode("utf-8", "replace") if isinstance(v, (bytes, memoryview)) else v
