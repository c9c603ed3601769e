"""The input gate, one regression per hostile input: each gets a 4xx problem+json, leaves
nothing behind, and the same kept-alive connection serves a normal prediction afterwards."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replicate.local.errors import ApiError
from replicate.local.gate import (
    DEFAULT_MAX_BODY,
    MAX_JSON_DEPTH,
    duration,
    number,
    parse_json,
    sanitize,
    size,
    strict_dumps,
)
from replicate.local.server import LocalServer

from .wire import Reply, Wire, strict_json

pytestmark = pytest.mark.hardening

AUTH = {"Authorization": "Bearer hardening"}
HELLO = "/v1/models/replicate/hello-world/predictions"
JSON = {"Content-Type": "application/json", **AUTH}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True) as s:
        yield s


@pytest.fixture
def wire(server: LocalServer) -> Iterator[Wire]:
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    with Wire(host, int(port)) as w:
        yield w


def problem(reply: Reply, *statuses: int) -> dict[str, Any]:
    """The problem+json body of a 4xx reply with one of ``statuses``."""
    assert reply.status in statuses, (reply.status, reply.body[:300])
    assert reply.content_type.startswith("application/problem+json"), reply.headers
    body = reply.json()
    assert body["status"] == reply.status and isinstance(body["detail"], str)
    return body


def hello_still_works(wire: Wire, text: str = "after") -> None:
    """A normal prediction succeeds on the same connection (no reconnect needed)."""
    reopened = wire.reopened
    r = wire.request(
        "POST", HELLO, {**JSON, "Prefer": "wait"}, json.dumps({"input": {"text": text}}).encode()
    )
    assert r.status == 201, r.body[:300]
    body = r.json()
    assert body["status"] == "succeeded" and body["output"] == f"hello {text}"
    assert wire.reopened == reopened


def list_still_works(wire: Wire) -> None:
    r = wire.request("GET", "/v1/predictions", AUTH)
    assert r.status == 200, r.body[:300]
    r.json()


# ---------------------------------------------------------------------------- JSON bodies


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"input": {"text": "\\ud800"}}', id="lone-high-surrogate-value"),
        pytest.param(b'{"input": {"text": "a\\udfffb"}}', id="lone-low-surrogate-value"),
        pytest.param(b'{"input": {"text": "a", "\\ud800": 1}}', id="surrogate-key"),
        pytest.param(b'{"input": {"text": ["\\udc00"]}}', id="surrogate-in-list"),
        pytest.param(b'{"input": {"text": NaN}}', id="NaN"),
        pytest.param(b'{"input": {"text": Infinity}}', id="Infinity"),
        pytest.param(b'{"input": {"text": -Infinity}}', id="-Infinity"),
        pytest.param(b'{"input": {"text": 1e400}}', id="overflows-to-inf"),
        pytest.param(b'{"input": {"text": "\xff\xfe"}}', id="invalid-utf8"),
        pytest.param(b'{"input": {"text": "\xed\xa0\x80"}}', id="utf8-encoded-surrogate"),
        pytest.param(b"\xef\xbb\xbf{}", id="bom"),
        pytest.param(b"[" * 5000 + b"]" * 5000, id="nested-5000"),
        pytest.param(b'{"input": {"text": ' + b"[" * 65 + b"]" * 65 + b"}}", id="nested-67"),
        pytest.param(b'{"input": ', id="truncated"),
    ],
)
def test_hostile_json_is_a_400_and_the_connection_lives_on(wire: Wire, body: bytes) -> None:
    problem(wire.request("POST", HELLO, JSON, body), 400)
    hello_still_works(wire)
    list_still_works(wire)


def test_lone_surrogate_never_reaches_the_model_queue(server: LocalServer, wire: Wire) -> None:
    """The reported wedge: a surrogate input left a prediction processing and the model's
    queue stuck. The gate refuses it, so nothing is queued."""
    before = server.core.store.query("SELECT COUNT(*) AS n FROM predictions")[0]["n"]  # type: ignore[union-attr]
    for _ in range(3):
        problem(wire.request("POST", HELLO, JSON, b'{"input": {"text": "\\ud800"}}'), 400)
    after = server.core.store.query("SELECT COUNT(*) AS n FROM predictions")[0]["n"]  # type: ignore[union-attr]
    assert after == before
    hello_still_works(wire)


def test_nesting_up_to_the_limit_passes_the_gate(wire: Wire) -> None:
    nested: Any = "x"
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = [nested]
    body = json.dumps({"input": {"text": nested}}).encode()
    # Past the gate: the schema refuses a list for a string, with its own 422.
    problem(wire.request("POST", HELLO, JSON, body), 422)


def test_escaped_surrogate_pairs_and_non_ascii_pass(wire: Wire) -> None:
    body = b'{"input": {"text": "\\ud83d\\ude00 \xc3\xa9 \\u00e9"}}'
    r = wire.request("POST", HELLO, {**JSON, "Prefer": "wait"}, body)
    assert r.status == 201 and r.json()["output"] == "hello \U0001f600 é é"


def test_parse_json_unit() -> None:
    assert parse_json(b"") is None and parse_json(b"  ", empty={}) == {}
    assert parse_json(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}
    assert parse_json(b'"\\\\ud800"') == "\\ud800"  # an escaped backslash, not a surrogate
    for bad in (b"NaN", b"[1e999]", b'{"\\udbff": 0}', b"\x80", b"[" * 65 + b"]" * 65):
        with pytest.raises(Exception) as info:
            parse_json(bad)
        assert getattr(info.value, "status", None) == 400, bad


# ---------------------------------------------------------------------------- body size


def test_a_50_mb_body_is_a_413_and_the_connection_lives_on(wire: Wire) -> None:
    body = b" " * (50 * 1024 * 1024)
    assert len(body) > DEFAULT_MAX_BODY
    problem(wire.request("POST", "/v1/predictions", JSON, body), 413)
    hello_still_works(wire)


def test_expect_100_continue_over_the_limit_is_refused_before_the_body(server: LocalServer) -> None:
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
            b"Content-Type: application/json\r\nContent-Length: 52428800\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        data = b""
        while True:  # the server answers, then closes: the body is never asked for
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"connection: close" in head.lower()
    assert strict_json(body)["status"] == 413


def test_a_body_over_the_limit_through_httpx_and_chunked(server: LocalServer) -> None:
    server.set_limits(max_body_size=4096)
    try:
        with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as c:
            r = c.post("/v1/predictions", content=b"x" * 5000)
            assert r.status_code == 413
            assert r.headers["content-type"] == "application/problem+json"

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
                for _ in range(10):
                    yield b"y" * 1000

            r = c.post("/v1/predictions", content=chunks())
            assert r.status_code == 413
            r = c.post(HELLO, json={"input": {"text": "ok"}}, headers={"Prefer": "wait"})
            assert r.status_code == 201 and r.json()["output"] == "hello ok"
            # Uploads keep their own limit, above the JSON one.
            r = c.post("/v1/files", files={"content": ("a.bin", b"z" * 20000)})
            assert r.status_code == 201, r.text
    finally:
        server.reset()


def test_the_body_limit_is_configurable() -> None:
    with LocalServer(max_body_size=2048) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as c:
        assert s.limits()["max_body_size"] == 2048
        body = {"input": {"text": "x" * 3000}}
        assert c.post(HELLO, json=body).status_code == 413
        assert c.post(HELLO, json={"input": {"text": "x" * 100}}).status_code == 201
        with pytest.raises(ValueError):
            s.set_limits(max_body_size=10)  # too small for the control requests themselves


def test_serve_option_max_body_size() -> None:
    from replicate.local.cli import build_parser

    args = build_parser().parse_args(["--max-body-size", "1MiB"])
    assert size(args.max_body_size) == 1024 * 1024
    assert size("10MB") == 10_000_000 and size("512") == 512
    for bad in ("-1", "1.5MB", "lots", "2PB"):
        with pytest.raises(ValueError):
            size(bad)


# ---------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "value", ["inf", "-inf", "1e20", "999999999h", "nan", "1e400", "-5", "4s", "400d"]
)
def test_cancel_after_out_of_range_is_422_and_stores_nothing(
    server: LocalServer, wire: Wire, value: str
) -> None:
    before = server.core.store.query("SELECT COUNT(*) AS n FROM predictions")[0]["n"]  # type: ignore[union-attr]
    body = json.dumps({"input": {"text": "x"}}).encode()
    r = wire.request("POST", HELLO, {**JSON, "Cancel-After": value}, body)
    assert problem(r, 422)["title"] == "Invalid Cancel-After header"
    after = server.core.store.query("SELECT COUNT(*) AS n FROM predictions")[0]["n"]  # type: ignore[union-attr]
    assert after == before
    list_still_works(wire)
    hello_still_works(wire)


def test_cancel_after_in_range_sets_the_deadline(wire: Wire) -> None:
    body = json.dumps({"input": {"text": "x"}}).encode()
    r = wire.request("POST", HELLO, {**JSON, "Cancel-After": "1h30m"}, body)
    assert r.status == 201 and r.json()["deadline"]


@pytest.mark.parametrize(
    "value", ["wait=inf", "wait=nan", "wait=0", "wait=1e3", "wait=-1", "wait=" + "9" * 40]
)
def test_prefer_wait_out_of_range_is_422(wire: Wire, value: str) -> None:
    body = json.dumps({"input": {"text": "x"}}).encode()
    problem(wire.request("POST", HELLO, {**JSON, "Prefer": value}, body), 422)
    hello_still_works(wire)


def test_last_event_id_with_a_30_digit_sequence(server: LocalServer, wire: Wire) -> None:
    body = json.dumps({"input": {"prompt": "a b", "max_tokens": 2, "delay_ms": 0}}).encode()
    r = wire.request(
        "POST", "/v1/models/local-demo/stream-text/predictions", {**JSON, "Prefer": "wait"}, body
    )
    assert r.status == 201
    stream = r.json()["urls"]["stream"].removeprefix(server.base_url)
    bad = wire.request("GET", stream, {"Last-Event-ID": "1:" + "9" * 30})
    assert "SQLite" not in problem(bad, 400)["detail"]
    bad = wire.request("GET", stream + "?last_event_id=1:" + "9" * 30)
    problem(bad, 400)
    # In range: a resume from the start replays everything up to ``done``; one after
    # ``done`` ends at once instead of waiting for events that never come.
    full = wire.request("GET", stream)
    assert full.status == 200 and b"event: done" in full.body
    done_id = full.body.split(b"event: done\nid: ")[1].split(b"\n")[0].decode()
    after = wire.request("GET", stream, {"Last-Event-ID": done_id})
    assert after.status == 200 and b"event:" not in after.body
    huge = wire.request("GET", stream, {"Last-Event-ID": f"1:{2**62}"})
    assert huge.status == 200 and b"event:" not in huge.body
    hello_still_works(wire)


# ---------------------------------------------------------------------------- cursors


def _cursor(query: bytes) -> str:
    return base64.urlsafe_b64encode(query).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(b"p=inf&i=x&d=n"),
        _cursor(b"p=-inf&i=x&d=p"),
        _cursor(b"p=nan&i=x&d=n"),
        _cursor(b"p=1e400&i=x"),
        _cursor(b"i=x"),
        _cursor(b"\xff\xfe"),
        "!!!",
        "a" * 5000,
    ],
)
def test_bad_cursors_are_400(wire: Wire, cursor: str) -> None:
    hello_still_works(wire)  # at least one row to page over
    for path in ("/v1/predictions", "/v1/files", "/v1/trainings"):
        problem(wire.request("GET", f"{path}?cursor={cursor}", AUTH), 400)
    r = wire.request("GET", f"/v1/models?cursor={cursor}", AUTH)
    problem(r, 400)


def test_offset_cursor_far_beyond_the_end_is_an_empty_page(wire: Wire) -> None:
    r = wire.request("GET", f"/v1/models?cursor={_cursor(b'o=' + b'9' * 40)}", AUTH)
    assert r.status == 200 and r.json()["results"] == []


# ---------------------------------------------------------------------------- controls


@pytest.mark.parametrize(
    "advance", ["nan", "inf", "1e400", 1e20, -1, "-5s", "999999999999h", True, [1]]
)
def test_clock_advance_must_be_finite_and_in_range(
    server: LocalServer, wire: Wire, advance: Any
) -> None:
    offset = server.core.clock.offset  # type: ignore[union-attr]
    problem(
        wire.request("POST", "/_local/clock", JSON, json.dumps({"advance": advance}).encode()), 422
    )
    assert server.core.clock.offset == offset  # type: ignore[union-attr]
    hello_still_works(wire)
    with pytest.raises(ValueError):
        server.advance_clock(
            advance
            if isinstance(advance, (str, float, int)) and not isinstance(advance, bool)
            else "nan"
        )


def test_clock_advance_in_range_still_works(server: LocalServer, wire: Wire) -> None:
    r = wire.request("POST", "/_local/clock", JSON, b'{"advance": "1m"}')
    assert r.status == 200 and r.json()["offset"] >= 60
    hello_still_works(wire)


@pytest.mark.parametrize(
    "limits",
    [
        {"retention": "nan"},
        {"retention": 1e300},
        {"file_expiry": "inf"},
        {"webhook_timeout": -1},
        {"webhook_backoff_scale": "1e400"},
        {"max_upload_size": -1},
        {"max_upload_size": 10**30},
        {"max_body_size": 10},
        {"max_queue_depth": 1.5},
        {"page_sizes": {"predictions": 10**9}},
        {"page_sizes": {"predictions": True}},
        {"rate_limits": {"burst": 10**400}},
        {"rate_limits": {"enabled": "yes"}},
    ],
)
def test_limits_must_be_finite_and_in_range(
    server: LocalServer, wire: Wire, limits: dict[str, Any]
) -> None:
    before = server.limits()
    problem(wire.request("POST", "/_local/limits", JSON, json.dumps(limits).encode()), 422)
    assert server.limits() == before
    with pytest.raises(ValueError):
        server.set_limits(**limits)
    hello_still_works(wire)


@pytest.mark.parametrize(
    "fault",
    [
        {"path": "/x", "delay_ms": 10**30},
        {"path": "/x", "delay_ms": -1},
        {"path": "/x", "hang": True, "hang_ms": 10**12},
        {"path": "/x", "status": 500, "probability": "x"},
        {"path": "/x", "status": 500, "probability": 2},
        {"path": "/x", "status": 500, "until": 1e300},
        {"path": "/x", "status": 429, "retry_after": 10**20},
        {"path": "/x", "status": 500, "times": 0},
        {"path": "/x", "status": 500, "headers": {"X-Bad": "a\r\nb"}},
        {"path": "/x", "status": 500, "drop": "yes"},
        {"path": 5, "status": 500},
    ],
)
def test_fault_fields_must_be_valid(wire: Wire, fault: dict[str, Any]) -> None:
    problem(wire.request("POST", "/_local/faults", JSON, json.dumps(fault).encode()), 422)
    hello_still_works(wire)


@pytest.mark.parametrize("ttl", ["inf", "nan", "abc", "-1", "1e400", "1e20"])
def test_signed_url_ttl_must_be_finite_and_in_range(
    server: LocalServer, wire: Wire, ttl: str
) -> None:
    problem(wire.request("GET", f"/_local/files/nothing/signed-url?ttl={ttl}", AUTH), 400)
    hello_still_works(wire)
    if ttl != "1e20":  # the handle takes seconds as a number; only the HTTP route caps them
        with pytest.raises(ValueError):
            server.sign_file_url("nothing", float(ttl) if ttl != "abc" else ttl)  # type: ignore[arg-type]


def test_number_and_duration_helpers() -> None:
    assert number("2.5", "x") == 2.5 and number(3, "x", integer=True) == 3
    assert duration("1h30m", "d", maximum=10**6) == 5400 and duration(5, "d", maximum=10) == 5
    for bad in ("nan", "inf", "1e400", True, None, [], "1e999"):
        with pytest.raises(ValueError):
            number(bad, "x")
        with pytest.raises(ValueError):
            duration(bad, "d", maximum=10**6)
    with pytest.raises(ValueError):
        duration("2h", "d", maximum=3600)
    with pytest.raises(ValueError):
        number(0, "x", minimum=1)


def test_strict_dumps_repairs_what_json_cannot_hold() -> None:
    value = {"a": float("nan"), "b": [float("inf"), "x\ud800y"], "c": "é"}
    out = strict_json(strict_dumps(value).encode())
    assert out == {"a": None, "b": [None, "x\ufffdy"], "c": "é"}
    assert sanitize({"\udc00": 1.0}) == {"\ufffd": 1.0}
    assert strict_dumps({"a": 1}) == '{"a":1}'


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _strict_json_can_hold(value: Any) -> bool:
    """No NaN or infinity, no lone surrogate."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(value=_JSON_VALUES, pad=st.sampled_from(["", " ", "\n\t", " x", "]"]))
def test_the_made_once_encoders_and_the_direct_scan_match_the_json_module(
    value: Any, pad: str
) -> None:
    """``json_text`` is ``json.dumps``; ``strict_dumps`` of what strict JSON can hold is
    ``json.dumps`` with compact separators; the body parser takes what ``json.loads`` takes
    (with or without white space around it) and refuses the rest."""
    from replicate.local.gate import json_text

    assert json_text(value) == json.dumps(value)
    holdable = _strict_json_can_hold(value)
    if holdable:
        assert strict_dumps(value) == json.dumps(value, separators=(",", ":"), allow_nan=False)
    raw = (json.dumps(value) + pad).encode()
    if holdable and not pad.strip():
        assert parse_json(raw) == json.loads(raw)
    else:
        with pytest.raises(ApiError):
            parse_json(raw)
