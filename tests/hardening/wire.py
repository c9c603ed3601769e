"""One kept-alive HTTP/1.1 connection to a server, as raw as a client sees it (socket + h11).

:class:`Wire` sends requests on a single socket and reads each reply whole. A reply that says
``Connection: close`` lets it open a new socket for the next request (counted in
``reopened``); a server that closes the socket *without* saying so makes the next request
raise :class:`Dropped`, which is the failure a kept-alive client (httpx, ``replicate.Client``)
would see as ``ReadError``. :func:`strict_json` parses the way strict JSON parsers do.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from typing import Any

import h11

_SURROGATE = re.compile("[\ud800-\udfff]")


class Dropped(AssertionError):
    """The server ended the connection without a complete reply or a ``Connection: close``."""


@dataclass
class Reply:
    """A complete reply: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        """The body as strict JSON (see :func:`strict_json`)."""
        return strict_json(self.body)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(raw: bytes) -> Any:
    """Parse like a strict JSON parser: UTF-8, no NaN/Infinity, no lone surrogates."""
    value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            assert not _SURROGATE.search(v), f"lone surrogate in {v!r}"
        elif isinstance(v, dict):
            for k, x in v.items():
                assert not _SURROGATE.search(k), f"lone surrogate in key {k!r}"
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, float):
            assert v == v and v not in (float("inf"), float("-inf")), v
    return value


class Wire:
    """A client connection to ``host:port`` that is reused for as long as the server allows."""

    def __init__(self, host: str, port: int, *, timeout: float = 60) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reopened = 0
        self.sock: socket.socket | None = None
        self.conn = h11.Connection(h11.CLIENT)
        self._open()

    def _open(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.conn = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Reply:
        """Send one request on the connection and read the whole reply."""
        if self.sock is None:
            self._open()
            self.reopened += 1
        assert self.sock is not None
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        names = {k.lower() for k, _ in items}
        if "host" not in names:
            items.insert(0, ("Host", f"{self.host}:{self.port}"))
        if body or method in ("POST", "PUT", "PATCH", "QUERY"):
            items.append(("Content-Length", str(len(body))))
        data = self.conn.send(h11.Request(method=method, target=target, headers=items))
        if body:
            data = (data or b"") + (self.conn.send(h11.Data(data=body)) or b"")
        data = (data or b"") + (self.conn.send(h11.EndOfMessage()) or b"")
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise Dropped(f"{method} {target}: the connection was gone ({exc})") from exc
        status, reply_headers, chunks = 0, {}, []
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise Dropped(f"{method} {target}: {exc}") from exc
            if event is h11.NEED_DATA:
                try:
                    received = self.sock.recv(65536)
                except OSError as exc:
                    raise Dropped(f"{method} {target}: connection reset ({exc})") from exc
                self.conn.receive_data(received)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                reply_headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers
                }
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise Dropped(f"{method} {target}: closed before a complete reply")
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        else:  # the server said Connection: close; the next request opens a new socket
            self.close()
        return Reply(status, reply_headers, b"".join(chunks))
