"""Server-sent events for ``urls.stream``: ids ``<unix>:<seq>``, resume, keep-alive, replay."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .files import DELIVERY_PREFIX
from .gate import MAX_EVENT_SEQ

if TYPE_CHECKING:
    from .core import Core

_ID_RE = re.compile(r"^\s*(\d+):(\d+)\s*$")


def parse_last_event_id(value: str | None) -> int:
    """The sequence number in a ``Last-Event-ID``; -1 (replay all) when absent or malformed.

    Raises ValueError for a sequence number beyond SQLite's integer range.
    """
    if not value:
        return -1
    m = _ID_RE.match(value)
    if not m:
        return -1
    seq = m.group(2).lstrip("0") or "0"
    if len(seq) > 19 or int(seq) > MAX_EVENT_SEQ:
        raise ValueError(f"the sequence number of Last-Event-ID is over {MAX_EVENT_SEQ}")
    return int(seq)


def format_event(type_: str, event_id: str, data: str) -> bytes:
    """``event:``, ``id:``, then one ``data:`` line per payload line, then a blank line."""
    lines = [f"event: {type_}", f"id: {event_id}"]
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


async def event_stream(
    core: Core,
    pid: str,
    origin: str,
    last_seq: int,
    *,
    drop_after: int | None = None,
) -> AsyncIterator[bytes]:
    """Replay events after ``last_seq``, then follow live ones until ``done``."""
    cursor = last_seq
    sent = 0
    keepalive = core.config.keepalive
    while True:
        ev = core.hub.register(pid)
        try:
            events = core.store.events_after(pid, cursor)
            # What is there is sent as one chunk (one write, not one per event).
            chunk: list[bytes] = []
            end = False
            for e in events:
                data = e["data"]
                if e["type"] == "output" and DELIVERY_PREFIX in data:
                    data = data.replace(DELIVERY_PREFIX, f"{origin}/delivery/")
                chunk.append(format_event(e["type"], f"{int(e['t'])}:{e['seq']}", data))
                cursor = e["seq"]
                sent += 1
                if e["type"] == "done" or (drop_after is not None and sent >= drop_after):
                    end = True
                    break
            if chunk:
                yield b"".join(chunk)
            if end:
                return
            if events:
                continue
            if cursor >= 0 and core.store.one(
                "SELECT seq FROM events WHERE prediction_id = ? AND type = 'done' AND seq <= ?",
                (pid, cursor),
            ):
                return  # the client has seen the end already (it resumed after ``done``)
            try:
                await asyncio.wait_for(ev.wait(), keepalive)
            except asyncio.TimeoutError:
                yield b": keep-alive\n\n"
        finally:
            core.hub.unregister(pid, ev)
