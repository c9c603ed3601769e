"""Property-based: generated bodies, headers, query strings and path segments at every route.

For every route of the running app (read from the app itself, so new routes are covered
without touching this file), hypothesis builds requests and sends them over one kept-alive
socket (:class:`~.wire.Wire`). The properties:

- never a 5xx;
- every 4xx is ``application/problem+json`` with a strict JSON body whose ``status`` is the
  reply's (exceptions the API documents: ``/v1/search`` answers ``application/json``, and the
  browser pages under ``/web/`` answer HTML);
- every 2xx JSON body is strict JSON (UTF-8, no NaN/Infinity, no lone surrogates);
- afterwards a normal prediction still succeeds on the same connection, without reconnecting
  unless the server said ``Connection: close``.

Runs are deterministic (``derandomize``) with a modest number of examples. For a longer,
random exploration: ``REPLICATE_HARDENING_EXAMPLES=2000 REPLICATE_HARDENING_RANDOM=1
python -m pytest tests/hardening/test_fuzz.py``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replicate.local.server import LocalServer

from .wire import Reply, Wire, strict_json

EXAMPLES = int(os.environ.get("REPLICATE_HARDENING_EXAMPLES", "40"))
pytestmark = [pytest.mark.hardening, pytest.mark.timeout(120 + EXAMPLES)]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("REPLICATE_HARDENING_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
)
AUTH = "Bearer hardening"
HELLO = "/v1/models/replicate/hello-world/predictions"


def echo(text: str = "", number: float = 0.0, count: int = 0, flag: bool = False) -> list[Any]:
    """Echoes its input (and a number that may overflow) as output."""
    return [text, number, count, flag, number * 1e300]


# ---------------------------------------------------------------------------- the server


class Target:
    """The server under test, the routes it serves and values that exist on it."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        # The app's own route table (the handle keeps the uvicorn server privately).
        app = server._server.config.app  # type: ignore[union-attr]
        self.routes: list[tuple[str, list[str]]] = sorted(
            (r.path, sorted(r.methods or ())) for r in app.routes if hasattr(r, "methods")
        )
        with Wire(self.host, self.port) as wire:
            hello = wire.request(
                "POST",
                HELLO,
                {"Authorization": AUTH, "Prefer": "wait", "Content-Type": "application/json"},
                b'{"input": {"text": "seed"}}',
            ).json()
            boundary = "seed"
            form = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
                f'filename="seed.txt"\r\n\r\nseed\r\n--{boundary}--\r\n'
            ).encode()
            upload = wire.request(
                "POST",
                "/v1/files",
                {
                    "Authorization": AUTH,
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
                form,
            ).json()
        self.known: dict[str, list[str]] = {
            "id": [hello["id"]],
            "owner": ["replicate", "hardening", "local-demo", "local"],
            "name": ["hello-world", "echo", "fail", "stream-text", "hello-trainable"],
            "version_id": [hello["version"]],
            "file_id": [upload["id"]],
            "action": ["hold", "release", "emit", "complete", "fail", "abort"],
            "fault_id": ["1", "0", "-1", "9" * 30],
            "slug": ["official", "text-generation"],
            "filename": ["output.png", "output.txt"],
            "token": [],
        }

    def reset_controls(self) -> None:
        """Undo what generated control requests changed (faults, limits, scripts)."""
        api = self.server._app_api()
        api.faults.clear()
        api.reset_controls()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with LocalServer(test_controls=True, models={"hardening/echo": echo}) as server:
        yield Target(server)


# ---------------------------------------------------------------------------- strategies

_any_char = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from(list('\x00\r\n\t"\\/%?#&=;:.é💥\u202e\ufeff')),
)
texts = st.text(_any_char, max_size=24)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),  # NaN and infinities included
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 2**63, 2**64]),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
weird_numbers = st.sampled_from(
    [
        "inf",
        "-inf",
        "nan",
        "NaN",
        "1e400",
        "1e20",
        "-1",
        "0",
        "",
        " ",
        "9" * 30,
        "0x10",
        "1_0",
        "5s",
        "999999999h",
        "١٢",
    ]
)


def _encode_json(value: Any, ascii_only: bool) -> bytes:
    text = json.dumps(value, allow_nan=True, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")  # raw surrogates make invalid UTF-8


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["shaped", "json", "binary", "nested", "numbers", "empty"]))
    if kind == "empty":
        return b""
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "nested":
        depth = draw(st.integers(min_value=1, max_value=4000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        core = "1" if opener != "[" else ""
        return (opener * depth + core + closer * depth).encode()
    if kind == "numbers":
        digits = draw(st.integers(min_value=1, max_value=6000))
        return ('{"input": {"count": ' + "9" * digits + "}}").encode()
    if kind == "json":
        return _encode_json(draw(json_values), draw(st.booleans()))
    # Shaped like what the routes expect, with generated values where it matters.
    body: dict[str, Any] = {}
    fields = {
        "input": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "text": json_values,
                    "number": numbers,
                    "count": numbers,
                    "flag": json_scalars,
                    "prompt": texts,
                    "max_tokens": numbers,
                    "delay_ms": st.integers(min_value=-5, max_value=50),
                },
            ),
            json_values,
        ),
        "version": st.one_of(
            st.sampled_from(["replicate/hello-world", "hardening/echo"]), json_values
        ),
        "webhook": st.one_of(
            st.sampled_from(
                ["http://[", "http://[::1", "http://127.0.0.1:9/hook", "ftp://x", "http://", ""]
            ),
            texts,
        ),
        "webhook_events_filter": json_values,
        "stream": json_scalars,
        "destination": st.one_of(st.sampled_from(["local/trained", "nobody/x"]), texts),
        "model": st.one_of(st.sampled_from(["replicate/hello-world"]), texts),
        "hardware": json_scalars,
        "min_instances": numbers,
        "max_instances": numbers,
        "owner": texts,
        "name": texts,
        "visibility": st.sampled_from(["public", "private", "x"]),
        "advance": st.one_of(numbers, weird_numbers, texts),
        "retention": st.one_of(numbers, weird_numbers),
        "file_expiry": st.one_of(numbers, weird_numbers),
        "webhook_timeout": st.one_of(numbers, weird_numbers),
        "page_sizes": st.dictionaries(st.sampled_from(["predictions", "files", "models"]), numbers),
        "max_queue_depth": numbers,
        "status": numbers,
        "delay_ms": numbers,
        "probability": st.one_of(numbers, weird_numbers),
        "until": st.one_of(numbers, weird_numbers),
        "times": numbers,
        "path": st.one_of(st.just("/nowhere"), texts),
        "output": json_values,
        "log": texts,
        "error": json_scalars,
        "outcomes": json_values,
        "secrets": json_scalars,
    }
    for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True)):
        body[key] = draw(fields[key])
    if draw(st.booleans()):
        body.setdefault("input", {"text": draw(texts)})
    return _encode_json(body, draw(st.booleans()))


def _segment(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


segments = st.one_of(
    texts.map(_segment),
    st.sampled_from(["..", ".", "%2e%2e", "%00", "%ff", "a%2Fb", "", "%", "%zz", "x" * 300]),
)


def _cursor(draw: st.DrawFn) -> str:
    fields = draw(
        st.dictionaries(
            st.sampled_from(["p", "i", "d", "o", "x"]),
            st.one_of(weird_numbers, texts, st.sampled_from(["1700000000.5", "n", "p"])),
            max_size=3,
        )
    )
    raw = urllib.parse.urlencode(
        {k: v.encode("utf-8", "surrogatepass") for k, v in fields.items()}
    ).encode()
    if draw(st.booleans()):
        raw = draw(st.binary(max_size=40))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@st.composite
def queries(draw: st.DrawFn) -> str:
    keys = st.one_of(
        st.sampled_from(
            [
                "cursor",
                "query",
                "limit",
                "prediction_id",
                "ttl",
                "since",
                "source",
                "created_after",
                "created_before",
                "last_event_id",
                "format",
                "owner",
                "expiry",
                "signature",
            ]
        ),
        texts,
    )
    pairs = []
    for key in draw(st.lists(keys, max_size=4)):
        if key == "cursor" and draw(st.booleans()):
            value = _cursor(draw)
        else:
            value = draw(
                st.one_of(weird_numbers, texts, st.sampled_from(["2024-01-01", "web", "json"]))
            )
        pairs.append(f"{_segment(key)}={_segment(value)}")
    if draw(st.booleans()):
        pairs.append(draw(st.sampled_from(["&&", "=", "%", "a=%ff", "a=%zz", "=x", "a==b"])))
    return "&".join(pairs)


_header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
).map(lambda s: s.strip(" \t"))


@st.composite
def header_sets(draw: st.DrawFn, method: str) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    auth = draw(st.sampled_from([AUTH, AUTH, AUTH, None, "Bearer", "Token x", "Basic eA=="]))
    if auth is not None:
        headers.append((b"Authorization", auth.encode()))
    options: dict[str, Any] = {
        "Prefer": st.one_of(
            st.sampled_from(
                ["wait=1", "wait=0", "wait=61", "wait=inf", "wait=nan", "respond-async"]
            ),
            _header_text,
        ),
        "Cancel-After": st.one_of(
            st.sampled_from(["5s", "1h", "inf", "nan", "1e20", "999999999h", "-5", "4s"]),
            st.from_regex(r"\A\d{1,25}(\.\d{1,3})?[hms]?\Z"),
            _header_text,
        ),
        "Last-Event-ID": st.one_of(st.from_regex(r"\A\d{1,30}:\d{1,40}\Z"), _header_text),
        "Content-Type": st.one_of(
            st.sampled_from(
                [
                    "application/json",
                    "multipart/form-data; boundary=x",
                    "multipart/form-data",
                    "text/plain",
                ]
            ),
            _header_text,
        ),
        "Idempotency-Key": _header_text,
        "X-Stainless-Retry-Count": st.one_of(weird_numbers, _header_text),
        "Accept": st.sampled_from(["application/json", "text/event-stream", "*/*"]),
        "Range": st.sampled_from(
            ["bytes=0-1", "bytes=-1", "bytes=5-1", "bytes=0-99999999999999999999"]
        ),
        "Expect": st.just("100-continue"),
    }
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=3, unique=True)):
        value = draw(options[name]).strip(" \t")
        if value:
            headers.append((name.encode(), value.encode("utf-8")))
    return headers


@st.composite
def requests(draw: st.DrawFn, target: Target) -> tuple[str, str, list[tuple[bytes, bytes]], bytes]:
    template, methods = draw(st.sampled_from(target.routes))
    method = draw(
        st.one_of(
            st.sampled_from(methods),
            st.sampled_from(methods),
            st.sampled_from(["GET", "POST", "DELETE", "PATCH", "PUT", "QUERY", "OPTIONS"]),
        )
    )

    def fill(match: re.Match[str]) -> str:
        known = target.known.get(match.group(1), [])
        if known and draw(st.integers(0, 2)):
            return str(draw(st.sampled_from(known)))
        return draw(segments)

    path = re.sub(r"\{(\w+)\}", fill, template)
    query = draw(queries()) if draw(st.booleans()) else ""
    target_path = f"{path}?{query}" if query else path
    headers = draw(header_sets(method))
    body = draw(bodies()) if method not in ("GET", "HEAD") or draw(st.integers(0, 9)) == 0 else b""
    if (b"Expect", b"100-continue") in headers and not body:
        headers.remove((b"Expect", b"100-continue"))
    return method, target_path, headers, body


# ---------------------------------------------------------------------------- properties


def check(method: str, path: str, reply: Reply) -> None:
    """The properties every reply must have."""
    where = f"{method} {path[:200]} -> {reply.status} {reply.body[:300]!r}"
    assert reply.status < 500, where
    if method == "HEAD" or reply.status in (204, 304):
        return
    ctype = reply.content_type
    if 400 <= reply.status < 500:
        if path.startswith("/web/") and ctype.startswith("text/html"):
            return  # browser pages answer browsers
        if path.startswith("/v1/search") and ctype == "application/json":
            body = strict_json(reply.body)
        else:
            assert ctype.startswith("application/problem+json"), where
            body = strict_json(reply.body)
        assert isinstance(body, dict) and body.get("status") == reply.status, where
        assert isinstance(body.get("detail"), str), where
    elif 200 <= reply.status < 300 and "json" in ctype:
        strict_json(reply.body)


def hello_on_the_same_connection(wire: Wire) -> None:
    reopened = wire.reopened
    reply = wire.request(
        "POST",
        HELLO,
        {"Authorization": AUTH, "Prefer": "wait", "Content-Type": "application/json"},
        b'{"input": {"text": "still here"}}',
    )
    assert reply.status == 201, reply.body[:300]
    out = reply.json()
    assert out["status"] == "succeeded" and out["output"] == "hello still here", out
    assert wire.reopened == reopened, "a normal request needed a new connection"


def run_requests(target: Target, batch: list[tuple[str, str, list[Any], bytes]]) -> None:
    with Wire(target.host, target.port) as wire:
        try:
            for method, path, headers, body in batch:
                reply = wire.request(method, path, headers, body)
                if path.startswith("/_local/"):
                    # A generated fault must not hit the next generated request: what the
                    # controls let in is checked by the reply above.
                    target.server._app_api().faults.clear()
                check(method, path, reply)
        finally:
            target.reset_controls()
        hello_on_the_same_connection(wire)
        list_reply = wire.request("GET", "/v1/predictions", [(b"Authorization", AUTH.encode())])
        assert list_reply.status == 200
        strict_json(list_reply.body)


@st.composite
def batches(draw: st.DrawFn, target: Target) -> list[Any]:
    return draw(st.lists(requests(target), min_size=1, max_size=3))


def test_every_route_survives_generated_requests(target: Target) -> None:
    @FUZZ
    @given(batch=batches(target))
    def prop(batch: list[Any]) -> None:
        run_requests(target, batch)

    prop()


@pytest.mark.parametrize(
    "route",
    [
        "/v1/predictions",
        HELLO,
        "/v1/models/hardening/echo/predictions",
        "/_local/limits",
        "/_local/faults",
        "/_local/clock",
    ],
)
def test_generated_bodies_on_the_busiest_routes(target: Target, route: str) -> None:
    @settings(FUZZ, max_examples=max(10, EXAMPLES // 2))
    @given(body=bodies(), headers=header_sets("POST"))
    def prop(body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        run_requests(target, [("POST", route, headers, body)])

    prop()


def test_generated_queries_on_the_lists(target: Target) -> None:
    lists = [
        "/v1/predictions",
        "/v1/files",
        "/v1/models",
        "/v1/trainings",
        "/v1/deployments",
        "/v1/collections",
        "/v1/search",
        "/_local/webhooks/deliveries",
        "/_local/requests",
    ]

    @settings(FUZZ, max_examples=max(10, EXAMPLES // 2))
    @given(path=st.sampled_from(lists), query=queries())
    def prop(path: str, query: str) -> None:
        run_requests(target, [("GET", f"{path}?{query}", [(b"Authorization", AUTH.encode())], b"")])

    prop()
