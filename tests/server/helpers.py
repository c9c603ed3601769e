"""Test helpers: controllable callables, a webhook receiver, polling on state (no sleeps)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from replicate.local.server import LocalServer

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
_counter = itertools.count()


def prediction_row(pid: str, **fields: Any) -> dict[str, Any]:
    """A prediction row as ``Store.insert_prediction`` takes it, for store-level tests."""
    return {
        "id": pid,
        "account": "acme",
        "model": "acme/m",
        "version": "v" * 64,
        "status": "starting",
        "input": {"text": "x"},
        "created_at": 1.5,
        "origin": "http://localhost",
        **fields,
    }


def held_stream(
    server: LocalServer, ref: str, first: str = "one", last: str = "two"
) -> threading.Event:
    """Register ``ref``, a streaming model that yields ``first``, then waits for the returned
    event (at most 30 s), then yields ``last``."""
    from replicate.local.schema import ConcatenateIterator

    go = threading.Event()

    def gen(text: str):  # type: ignore[no-untyped-def]
        yield first
        go.wait(30)
        yield last

    gen.__annotations__["return"] = ConcatenateIterator[str]
    server.register(ref, gen)
    return go


def unique(prefix: str = "test") -> str:
    """A fresh model name."""
    return f"{prefix}/m{next(_counter)}-{int(time.time() * 1000) % 100000}"


class Gate:
    """A callable model whose runs block until released; records start/end order."""

    def __init__(self) -> None:
        self.release_all = threading.Event()
        self.events: dict[str, threading.Event] = {}
        self.started: list[str] = []
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()
        self.started_cond = threading.Condition()

    def event(self, key: str) -> threading.Event:
        with self._lock:
            return self.events.setdefault(key, threading.Event())

    def release(self, key: str | None = None) -> None:
        if key is None:
            self.release_all.set()
            for ev in list(self.events.values()):
                ev.set()
        else:
            self.event(key).set()

    def wait_started(self, n: int, timeout: float = 10) -> None:
        with self.started_cond:
            assert self.started_cond.wait_for(lambda: len(self.started) >= n, timeout), self.started

    def fn(self) -> Callable[..., str]:
        gate = self

        def held(text: str, cancel_event: threading.Event | None = None) -> str:
            with gate._lock:
                gate.running += 1
                gate.max_running = max(gate.max_running, gate.running)
            with gate.started_cond:
                gate.started.append(text)
                gate.started_cond.notify_all()
            ev = gate.event(text)
            try:
                while not (ev.is_set() or gate.release_all.is_set()):
                    if cancel_event is not None and cancel_event.wait(0.01):
                        return "canceled"
                return f"done {text}"
            finally:
                with gate._lock:
                    gate.running -= 1

        return held


def register_gate(server: LocalServer, concurrency: int = 1) -> tuple[str, Gate]:
    gate = Gate()
    name = unique()
    server.register(name, gate.fn(), concurrency=concurrency)
    return name, gate


def wait_status(
    client: httpx.Client, pid: str, statuses: set[str], timeout: float = 15
) -> dict[str, Any]:
    """Poll until the prediction reaches one of ``statuses`` (bounded, state-based)."""
    deadline = time.monotonic() + timeout
    while True:
        p = client.get(f"/v1/predictions/{pid}").json()
        if p["status"] in statuses:
            return p
        assert time.monotonic() < deadline, f"prediction {pid} stuck in {p['status']}"
        time.sleep(0.01)


def wait_until(pred: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(s.split(",", 1)[1] == expected for s in headers["webhook-signature"].split())


class Receiver:
    """A webhook receiver on a loopback port; ``statuses`` scripts the replies (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                with receiver.cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "json": json.loads(body),
                            "time": time.monotonic(),
                            "status": status,
                        }
                    )
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(
        self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 15
    ) -> list[dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.requests), timeout), self.requests
            return list(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
