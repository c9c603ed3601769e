"""Server-sent events for ``urls.stream``: ids ``<unix>:<seq>``, resume, keep-alive, replay."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

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


class EventStreamResponse(Response):
    """The ``urls.stream`` answer: :func:`event_stream` as ``text/event-stream``.

    A plain ASGI response rather than Starlette's ``StreamingResponse``, which starts a task
    group to watch for the client going away on every stream: here that watch starts only
    when the stream has to wait for new events (a finished prediction's stream is sent at
    once and needs none).
    """

    media_type = "text/event-stream"

    def __init__(  # no super().__init__(): there is no body to render
        self, core: Core, pid: str, origin: str, last_seq: int, drop_after: int | None
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = _HEADERS
        self._args = (core, pid, origin, last_seq)
        self._drop_after = drop_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        events = event_stream(*self._args, drop_after=self._drop_after, receive=receive)
        try:
            chunk, last = await anext(events, _END)
            if last:  # all there is, at once (a finished prediction's): one plain body
                length = (b"content-length", str(len(chunk)).encode())
                await send(
                    {"type": "http.response.start", "status": 200, "headers": [*_HEADERS, length]}
                )
                await send({"type": "http.response.body", "body": chunk, "more_body": False})
                return
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            while True:
                await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                if last:
                    return
                chunk, last = await anext(events, _END)
        finally:
            await events.aclose()


_END = (b"", True)  # a stream that ends without saying so ends there
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
]


def _set_all(events: list[asyncio.Event]) -> None:
    for event in events:
        event.set()


def _expire(event: asyncio.Event, expired: list[bool]) -> None:
    expired.append(True)
    event.set()


async def _gone(receive: Receive) -> None:
    """Returns once the client has gone away (``http.disconnect``)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def event_stream(
    core: Core,
    pid: str,
    origin: str,
    last_seq: int,
    *,
    drop_after: int | None = None,
    receive: Receive | None = None,
) -> AsyncGenerator[tuple[bytes, bool], None]:
    """Replay events after ``last_seq``, then follow live ones until ``done`` (or until the
    client goes away, seen through ``receive``): chunks of the answer, each with whether it
    is the last (the stream ends after it)."""
    cursor = last_seq
    sent = 0
    keepalive = core.config.keepalive
    loop = asyncio.get_running_loop()
    gone: asyncio.Task[None] | None = None
    woken: list[asyncio.Event] = []  # the event of the current wait, set when the client goes
    try:
        while True:
            ev = core.hub.register(pid)
            try:
                events = core.store.event_rows(pid, cursor)
                # What is there is sent as one chunk (one write, not one per event).
                chunk: list[str] = []
                end = False
                for seq, type_, data, t in events:
                    if type_ == "output" and DELIVERY_PREFIX in data:
                        data = data.replace(DELIVERY_PREFIX, f"{origin}/delivery/")
                    if "\n" in data:
                        chunk.append(format_event(type_, f"{int(t)}:{seq}", data).decode())
                    else:
                        chunk.append(f"event: {type_}\nid: {int(t)}:{seq}\ndata: {data}\n\n")
                    cursor = seq
                    sent += 1
                    if type_ == "done" or (drop_after is not None and sent >= drop_after):
                        end = True
                        break
                if chunk:
                    yield "".join(chunk).encode(), end
                if end:
                    return
                if events:
                    continue
                if cursor >= 0 and core.store.ended_by(pid, cursor):
                    yield b"", True  # the client has seen the end already (it resumed after it)
                    return
                if receive is not None and gone is None:
                    gone = asyncio.ensure_future(_gone(receive))
                    gone.add_done_callback(lambda _: _set_all(woken))
                woken[:] = [ev]
                # A timer rather than ``wait_for`` (which makes a task of every wait).
                expired: list[bool] = []
                timer = loop.call_later(keepalive, _expire, ev, expired)
                try:
                    await ev.wait()
                finally:
                    timer.cancel()
                if expired:
                    yield b": keep-alive\n\n", False
                if gone is not None and gone.done():
                    yield b"", True
                    return
            finally:
                core.hub.unregister(pid, ev)
    finally:
        if gone is not None and not gone.done():
            gone.cancel()
