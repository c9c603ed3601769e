"""Helpers of the fault, load and memory tests: waiting on states, threads, servers."""

from __future__ import annotations

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
