"""Helpers of the fault, load and memory tests: waiting on states, threads, servers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}


def wait_until(pred: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``pred`` until it is truthy (a state, never a fixed sleep); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout:g} s"
        time.sleep(0.005)


def model_threads(pids: list[str] | None = None) -> list[threading.Thread]:
    """Live threads running a model (named ``replicate-local-<prediction id>``)."""
    out = []
    for t in threading.enumerate():
        if not t.name.startswith("replicate-local-") or not t.is_alive():
            continue
        pid = t.name.removeprefix("replicate-local-")
        if pids is None or pid in pids:
            out.append(t)
    return out


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc."""
    path = f"/proc/{pid or 'self'}/status"
    with open(path) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Receiver:
    """A webhook receiver on a loopback port that answers 200 and records JSON bodies."""

    def __init__(self) -> None:
        from http import server as http_server

        self.requests: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(http_server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.cond:
                    receiver.requests.append(
                        {
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "json": json.loads(body),
                        }
                    )
                    receiver.cond.notify_all()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.httpd = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(
        self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 20
    ) -> list[dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.requests), timeout), self.requests
            return list(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
