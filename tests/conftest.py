"""Shared test fixtures: a scripted mock API and a replayer of the shared VCR recordings.

* :class:`MockAPI` answers requests from queued responses per ``(method, path)`` and records every
  request, for unit tests of the namespaces (``mock_api`` fixture).
* :func:`load_recording` reads ``tests/data/recordings/<name>.yaml`` (both response shapes: the old
  ``{status_code, headers, content}`` and the newer ``{status{code}, headers, body{string}}``).
  :class:`ReplayTransport` serves the recorded interactions through ``httpx.MockTransport`` and
  checks that the client sent the recorded method, path (+ query) and body.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import replicate

ROOT = Path(__file__).resolve().parent.parent
#: Real exchanges with api.replicate.com and the official OpenAPI spec, copied into the repository
#: (see ``tests/data/README.md`` for their source).
DATA_DIR = ROOT / "tests" / "data"
RECORDINGS_DIR = DATA_DIR / "recordings"
SPEC_PATH = DATA_DIR / "openapi.json"

TOKEN = "r8_test_token_not_a_secret"
BASE_URL = "https://api.replicate.com"


# ---------------------------------------------------------------------- mock API


@dataclass
class MockAPI:
    """Answers requests from queued responses per ``(METHOD, path)`` and records them.

    ``add(method, path, json=..., status=..., headers=...)`` queues a response; the last queued
    response for a route is repeated once the queue is drained. Unrouted requests get a 404.
    """

    routes: dict[tuple[str, str], deque[httpx.Response]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    requests: list[httpx.Request] = field(default_factory=list)

    def add(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        text: str | None = None,
    ) -> MockAPI:
        if text is not None:
            response = httpx.Response(status, text=text, headers=headers)
        else:
            response = httpx.Response(status, json=json, headers=headers)
        self.routes[(method.upper(), path)].append(response)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(
                404, json={"detail": f"no route {request.method} {request.url.path}"}
            )
        response = queue.popleft() if len(queue) > 1 else queue[0]
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def client(self, **kwargs: Any) -> replicate.Client:
        kwargs.setdefault("api_token", TOKEN)
        kwargs.setdefault("poll_interval", 0)
        return replicate.Client(transport=httpx.MockTransport(self.handler), **kwargs)


@pytest.fixture
def mock_api() -> MockAPI:
    """A fresh :class:`MockAPI`; ``mock_api.client()`` builds a client over it."""
    return MockAPI()


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def use_async(request: pytest.FixtureRequest) -> bool:
    """Parametrises a test over the sync and async twin of a method."""
    return bool(request.param)


async def call(obj: Any, method: str, /, *args: Any, use_async: bool, **kwargs: Any) -> Any:
    """Call ``obj.<method>(...)`` or ``await obj.async_<method>(...)``."""
    if use_async:
        return await getattr(obj, f"async_{method}")(*args, **kwargs)
    return getattr(obj, method)(*args, **kwargs)


@pytest.fixture
def invoke(use_async: bool) -> Callable[..., Any]:
    """``await invoke(obj, "get", ...)``: the sync or async twin, per the ``use_async`` param."""

    async def run(obj: Any, method: str, /, *args: Any, **kwargs: Any) -> Any:
        return await call(obj, method, *args, use_async=use_async, **kwargs)

    return run


# ---------------------------------------------------------------------- recordings


@dataclass
class Interaction:
    """One recorded request/response pair."""

    method: str
    uri: str
    body: bytes
    request_headers: dict[str, str]
    status: int
    headers: list[tuple[str, str]]
    content: bytes

    @property
    def url(self) -> httpx.URL:
        return httpx.URL(self.uri)

    def json(self) -> Any:
        return json.loads(self.content)


def _header_items(raw: Any) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, values in (raw or {}).items():
        for value in values if isinstance(values, list) else [values]:
            items.append((str(key), str(value)))
    return items


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def load_recording(name: str) -> list[Interaction]:
    """The interactions of ``recordings/<name>.yaml`` with decoded (un-gzipped) bodies."""
    path = RECORDINGS_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    # The recordings ship with the repository: a missing one is a broken test, never a skip.
    assert path.is_file(), f"recording {path} is missing"
    return list(_load_path(str(path)))


@functools.lru_cache(maxsize=64)
def _load_path(path: str) -> tuple[Interaction, ...]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=loader)
    out: list[Interaction] = []
    for item in data["interactions"]:
        request, response = item["request"], item["response"]
        if "status_code" in response:
            status = int(response["status_code"])
            content = _as_bytes(response.get("content"))
        else:
            status = int(response["status"]["code"])
            content = _as_bytes((response.get("body") or {}).get("string"))
        headers = _header_items(response.get("headers"))
        encoding = {k.lower(): v for k, v in headers}.get("content-encoding", "")
        if "gzip" in encoding.lower() and content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
        # The body is served decoded: drop the framing headers that described the raw bytes.
        headers = [
            (k, v)
            for k, v in headers
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        out.append(
            Interaction(
                method=str(request["method"]).upper(),
                uri=str(request["uri"]),
                body=_as_bytes(request.get("body")),
                request_headers={k.lower(): v for k, v in _header_items(request.get("headers"))},
                status=status,
                headers=headers,
                content=content,
            )
        )
    return tuple(out)


def _same_body(sent: bytes, recorded: bytes) -> bool:
    if sent == recorded:
        return True
    try:
        return bool(json.loads(sent) == json.loads(recorded))
    except ValueError:
        return False


class ReplayTransport(httpx.MockTransport):
    """Serves recorded interactions in order, checking what the client sends.

    Each request must match the next unused interaction with the same method and URL (path and
    query; JSON bodies compared as values, key order ignored). ``strict_order=True`` requires
    the exact recorded order. ``check`` receives ``(request, interaction)`` for extra assertions.
    """

    def __init__(
        self,
        interactions: list[Interaction],
        *,
        strict_order: bool = False,
        check: Callable[[httpx.Request, Interaction], None] | None = None,
    ) -> None:
        super().__init__(self._handle)
        self.interactions = list(interactions)
        self.used: list[bool] = [False] * len(self.interactions)
        self.strict_order = strict_order
        self.check = check
        self.requests: list[httpx.Request] = []
        self.served: list[Interaction] = []

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        for index, item in enumerate(self.interactions):
            if self.used[index]:
                continue
            matches = (
                item.method == request.method
                and item.url.path == request.url.path
                and item.url.query == request.url.query
                and _same_body(request.content, item.body)
            )
            if matches:
                self.used[index] = True
                self.served.append(item)
                if self.check is not None:
                    self.check(request, item)
                return httpx.Response(item.status, headers=item.headers, content=item.content)
            if self.strict_order:
                break
        raise AssertionError(
            f"Unexpected request {request.method} {request.url} body={request.content[:200]!r}; "
            f"next recorded: {self._next_unused()}"
        )

    def _next_unused(self) -> str:
        for index, item in enumerate(self.interactions):
            if not self.used[index]:
                return f"{item.method} {item.uri} body={item.body[:200]!r}"
        return "<none>"

    def unused(self) -> list[Interaction]:
        return [item for item, used in zip(self.interactions, self.used, strict=True) if not used]


@dataclass
class Replay:
    """A client wired to a :class:`ReplayTransport` over one recording."""

    interactions: list[Interaction]
    transport: ReplayTransport
    client: replicate.Client

    def find(self, method: str, path_fragment: str) -> list[Interaction]:
        return [i for i in self.interactions if i.method == method and path_fragment in i.uri]


@pytest.fixture
def replay() -> Iterator[Callable[..., Replay]]:
    """Factory: ``replay("predictions-get", only=lambda i: ...)`` → :class:`Replay`.

    ``only`` selects the interactions to serve (default: all).
    """
    clients: list[replicate.Client] = []

    def make(
        name: str,
        *,
        only: Callable[[Interaction], bool] | None = None,
        strict_order: bool = False,
        check: Callable[[httpx.Request, Interaction], None] | None = None,
        **client_kwargs: Any,
    ) -> Replay:
        interactions = [i for i in load_recording(name) if only is None or only(i)]
        transport = ReplayTransport(interactions, strict_order=strict_order, check=check)
        client_kwargs.setdefault("api_token", TOKEN)
        client_kwargs.setdefault("poll_interval", 0)
        client_kwargs.setdefault("base_url", BASE_URL)
        client = replicate.Client(transport=transport, **client_kwargs)
        clients.append(client)
        return Replay(interactions, transport, client)

    yield make
    for client in clients:
        client.close()
