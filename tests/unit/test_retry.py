"""Tests of the retry policy and RetryTransport (docs/retries.md)."""

from __future__ import annotations

import email.utils
import gzip
import io
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from replicate._retry import (
    DEFAULT_RETRY_STATUS_CODES,
    DEFAULT_RETRYABLE_METHODS,
    ReplayableStream,
    RetryTransport,
    backoff_delay,
    is_replayable,
    parse_retry_after,
    retry_after_from_body,
)

URL = "https://api.replicate.com/v1/predictions?secret=query-value"
NOW = 1_700_000_000.0  # fixed wall clock for HTTP-date tests
Outcome = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class ScriptedTransport(httpx.MockTransport):
    """A MockTransport that plays a script of outcomes and consumes bodies like a real transport.

    httpx.MockTransport calls ``request.read()``, which swaps any stream for an in-memory copy and
    would make every body replayable; a real transport only iterates the stream once.
    """

    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__(self._next)
        self.outcomes = list(outcomes)
        self.bodies: list[bytes] = []
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.closed = False

    def _next(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.outcomes:
            raise AssertionError("unexpected extra request")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        response = outcome if isinstance(outcome, httpx.Response) else outcome(request)
        self.responses.append(response)
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(b"".join(request.stream))  # type: ignore[arg-type]
        return self._next(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(b"".join([c async for c in request.stream]))  # type: ignore[union-attr]
        return self._next(request)

    def close(self) -> None:
        self.closed = True

    @property
    def calls(self) -> int:
        return len(self.requests)


class Recorder:
    """Injectable sleeps that record the delays instead of waiting."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.delays: list[float] = []
        self.on_sleep = on_sleep

    def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        if self.on_sleep:
            self.on_sleep(delay)

    async def async_sleep(self, delay: float) -> None:
        self.sleep(delay)


def make(
    outcomes: list[Outcome], recorder: Recorder | None = None, **kwargs: Any
) -> tuple[RetryTransport, ScriptedTransport, Recorder]:
    inner = ScriptedTransport(outcomes)
    rec = recorder or Recorder()
    kwargs.setdefault("_uniform", lambda a, b: 0.0)
    kwargs.setdefault("_now", lambda: NOW)
    transport = RetryTransport(inner, _sleep=rec.sleep, _async_sleep=rec.async_sleep, **kwargs)
    return transport, inner, rec


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def send(
    mode: str, transport: RetryTransport, method: str, url: str = URL, **kwargs: Any
) -> httpx.Response:
    """Send one request through an httpx client of the given flavour; the body is read."""
    if mode == "sync":
        with httpx.Client(transport=transport) as client:
            return client.request(method, url, **kwargs)
    async with httpx.AsyncClient(transport=transport) as aclient:
        return await aclient.request(method, url, **kwargs)


async def send_request(
    mode: str, transport: RetryTransport, request: httpx.Request
) -> httpx.Response:
    if mode == "sync":
        with httpx.Client(transport=transport) as client:
            return client.send(request)
    async with httpx.AsyncClient(transport=transport) as aclient:
        return await aclient.send(request)


def generator_body(mode: str) -> Any:
    """A one-shot body: a sync generator for sync clients, an async generator for async ones."""
    if mode == "sync":
        return (c for c in [b"chunk-1", b"chunk-2"])

    async def agen() -> AsyncIterator[bytes]:
        yield b"chunk-1"
        yield b"chunk-2"

    return agen()


def ok() -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


# ------------------------------------------------------------------------------------------
# Pure functions
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("", None),
        (None, None),
        ("soon", None),
        ("-3", None),
        ("1e3", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_http_dates_including_obsolete_formats() -> None:
    now = 784_111_770.0  # 1994-11-06 08:49:30 UTC
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == 7.0  # IMF-fixdate
    assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == 7.0  # RFC 850
    assert parse_retry_after("Sun Nov  6 08:49:37 1994", now) == 7.0  # asctime, UTC
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now) == 0.0  # past -> 0
    assert parse_retry_after("Sun, 06 Nov 1994 09:49:37 GMT", now, cap=60) == 60.0
    assert parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", now) is None


def test_parse_retry_after_cap() -> None:
    assert parse_retry_after("3600", NOW, cap=60) == 60.0
    assert parse_retry_after("30", NOW, cap=60) == 30.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"retry_after": 4}', 4.0),
        (b'{"retry_after": 2.5, "detail": "slow down"}', 2.5),
        (b'{"retry_after": "3"}', 3.0),
        (b'{"retry_after": -1}', 0.0),
        (b'{"retry_after": true}', None),
        (b'{"retry_after": null}', None),
        (b'{"retry_after": "later"}', None),
        (b"[1, 2]", None),
        (b"<html>busy</html>", None),
        (b"", None),
    ],
)
def test_retry_after_from_body(body: bytes, expected: float | None) -> None:
    assert retry_after_from_body(body) == expected


def test_backoff_is_exponential_and_capped() -> None:
    delays = [
        backoff_delay(n, backoff_factor=0.1, jitter_ratio=0.0, max_backoff_wait=1.0)
        for n in range(1, 8)
    ]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert backoff_delay(10_000, backoff_factor=0.1, jitter_ratio=0.1, max_backoff_wait=60) == 60


@pytest.mark.parametrize("attempt", [1, 2, 3, 5])
def test_jitter_bounds(attempt: int) -> None:
    base = 0.1 * 2 ** (attempt - 1)
    low = backoff_delay(
        attempt, backoff_factor=0.1, jitter_ratio=0.5, max_backoff_wait=60, uniform=lambda a, b: a
    )
    high = backoff_delay(
        attempt, backoff_factor=0.1, jitter_ratio=0.5, max_backoff_wait=60, uniform=lambda a, b: b
    )
    assert low == pytest.approx(base * 0.5)
    assert high == pytest.approx(base * 1.5)
    rng = random.Random(1234)
    samples = [
        backoff_delay(
            attempt, backoff_factor=0.1, jitter_ratio=0.1, max_backoff_wait=60, uniform=rng.uniform
        )
        for _ in range(500)
    ]
    assert all(base * 0.9 <= s <= base * 1.1 for s in samples)
    # uniform, not a fixed +-ratio: values spread over the interval
    assert len({round(s, 9) for s in samples}) > 100
    assert min(samples) < base * 0.95 and max(samples) > base * 1.05


def test_uniform_is_called_with_symmetric_ratio() -> None:
    seen: list[tuple[float, float]] = []

    def uniform(a: float, b: float) -> float:
        seen.append((a, b))
        return 0.0

    backoff_delay(1, backoff_factor=1, jitter_ratio=0.25, max_backoff_wait=60, uniform=uniform)
    assert seen == [(-0.25, 0.25)]


class Rewindable(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An upload-like stream implementing the ReplayableStream protocol."""

    def __init__(self, data: bytes, *, replayable: bool = True) -> None:
        self.data = data
        self.replayable = replayable
        self.position = 0
        self.rewinds = 0

    def rewind(self) -> None:
        self.rewinds += 1
        self.position = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.position < len(self.data):
            chunk = self.data[self.position : self.position + 3]
            self.position += len(chunk)
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


class NotSeekable(io.BytesIO):
    def seekable(self) -> bool:
        return False


def test_is_replayable() -> None:
    assert is_replayable(httpx.Request("GET", URL).stream)
    assert is_replayable(httpx.Request("POST", URL, json={"a": 1}).stream)
    assert is_replayable(httpx.Request("POST", URL, content=b"abc").stream)
    assert is_replayable(httpx.Request("POST", URL, data={"a": "b"}).stream)
    assert is_replayable(httpx.Request("POST", URL, files={"f": io.BytesIO(b"x")}).stream)
    assert is_replayable(httpx.Request("POST", URL, files={"f": ("n.txt", b"x")}).stream)
    assert not is_replayable(httpx.Request("POST", URL, files={"f": NotSeekable(b"x")}).stream)
    assert not is_replayable(httpx.Request("POST", URL, content=iter([b"a"])).stream)
    assert not is_replayable(httpx.Request("POST", URL, content=(c for c in [b"a"])).stream)
    assert isinstance(Rewindable(b""), ReplayableStream)
    assert is_replayable(Rewindable(b""))
    assert not is_replayable(Rewindable(b"", replayable=False))
    assert not is_replayable(object())


# ------------------------------------------------------------------------------------------
# Construction
# ------------------------------------------------------------------------------------------


def test_defaults() -> None:
    transport = RetryTransport(httpx.MockTransport(lambda r: ok()))
    assert transport.max_attempts == 10
    assert transport.max_backoff_wait == 60
    assert transport.backoff_factor == 0.1
    assert transport.jitter_ratio == 0.1
    assert transport.retryable_methods == DEFAULT_RETRYABLE_METHODS
    assert transport.retryable_methods == {
        "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", "QUERY"
    }  # fmt: skip
    assert transport.retry_status_codes == DEFAULT_RETRY_STATUS_CODES == {
        408, 429, 500, 502, 503, 504
    }  # fmt: skip
    assert isinstance(transport, httpx.BaseTransport)
    assert isinstance(transport, httpx.AsyncBaseTransport)


def test_empty_sets_fall_back_and_methods_are_case_insensitive() -> None:
    inner = httpx.MockTransport(lambda r: ok())
    transport = RetryTransport(inner, retryable_methods=[], retry_status_codes=set())
    assert transport.retryable_methods == DEFAULT_RETRYABLE_METHODS
    assert transport.retry_status_codes == DEFAULT_RETRY_STATUS_CODES
    custom = RetryTransport(inner, retryable_methods=["get"], retry_status_codes=[503])
    assert custom.retryable_methods == {"GET"}
    assert custom.retry_status_codes == {503}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"jitter_ratio": -0.01}, "jitter_ratio"),
        ({"jitter_ratio": 0.51}, "jitter_ratio"),
        ({"jitter_ratio": float("nan")}, "jitter_ratio"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -3}, "max_attempts"),
        ({"max_backoff_wait": -1}, "max_backoff_wait"),
        ({"backoff_factor": -1}, "backoff_factor"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RetryTransport(httpx.MockTransport(lambda r: ok()), **kwargs)


def test_boundary_arguments_are_valid() -> None:
    inner = httpx.MockTransport(lambda r: ok())
    RetryTransport(inner, jitter_ratio=0, max_attempts=1)
    RetryTransport(inner, jitter_ratio=0.5)
    assert RetryTransport(inner, max_attempts=3.0).max_attempts == 3  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [2.5, float("inf"), float("nan"), "3", True, None])
def test_max_attempts_must_be_an_integer(value: Any) -> None:
    with pytest.raises(TypeError, match="max_attempts"):
        RetryTransport(httpx.MockTransport(lambda r: ok()), max_attempts=value)


# ------------------------------------------------------------------------------------------
# Status handling
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_429_retry_after_seconds(mode: str, method: str) -> None:
    transport, inner, rec = make([httpx.Response(429, headers={"Retry-After": "2"}), ok()])
    response = await send(mode, transport, method, json={"input": {}})
    assert response.status_code == 200
    assert inner.calls == 2
    assert rec.delays == [2.0]


async def test_429_retry_after_decimal_seconds(mode: str) -> None:
    transport, _inner, rec = make([httpx.Response(429, headers={"Retry-After": "0.25"}), ok()])
    assert (await send(mode, transport, "GET")).status_code == 200
    assert rec.delays == [0.25]


async def test_429_retry_after_http_date(mode: str) -> None:
    headers = {"Retry-After": http_date(NOW + 5)}
    transport, _inner, rec = make([httpx.Response(429, headers=headers), ok()])
    response = await send(mode, transport, "POST", json={})
    assert response.status_code == 200
    assert rec.delays == [5.0]


async def test_429_json_body_retry_after_in_memory(mode: str) -> None:
    transport, _inner, rec = make([httpx.Response(429, json={"retry_after": 3}), ok()])
    assert (await send(mode, transport, "POST", json={})).status_code == 200
    assert rec.delays == [3.0]


async def test_header_wins_over_body(mode: str) -> None:
    first = httpx.Response(429, headers={"Retry-After": "1"}, json={"retry_after": 9})
    transport, _inner, rec = make([first, ok()])
    await send(mode, transport, "GET")
    assert rec.delays == [1.0]


async def test_unusable_header_falls_back_to_body(mode: str) -> None:
    first = httpx.Response(429, headers={"Retry-After": "whenever"}, json={"retry_after": 4})
    transport, _inner, rec = make([first, ok()])
    await send(mode, transport, "GET")
    assert rec.delays == [4.0]


class ChunkStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A network-like response stream: readable once, records closing."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.consumed = False
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        assert not self.consumed, "stream read twice"
        self.consumed = True
        yield self.data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def streamed(status: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    all_headers.update(headers or {})
    return httpx.Response(status, headers=all_headers, stream=ChunkStream(body))


async def test_429_streamed_json_body_is_read_and_kept(mode: str) -> None:
    body = json.dumps({"detail": "slow down", "retry_after": 7}).encode()
    transport, inner, rec = make([streamed(429, body), streamed(429, body)], max_attempts=2)
    response = await send(mode, transport, "POST", json={})
    assert rec.delays == [7.0]
    assert response.status_code == 429
    assert response.json()["detail"] == "slow down"
    assert inner.responses[0].stream.closed  # type: ignore[attr-defined]


async def test_429_body_read_is_kept_when_not_retried(mode: str) -> None:
    """The body was read to look for retry_after, then the retry was refused: still readable."""
    body = json.dumps({"detail": "slow down", "retry_after": 7}).encode()
    transport, _inner, rec = make([streamed(429, body)], max_attempts=2)
    response = await send(mode, transport, "POST", content=generator_body(mode))
    assert rec.delays == []
    assert response.json() == {"detail": "slow down", "retry_after": 7}


async def test_429_gzip_body_is_kept_raw_and_decoded_once(mode: str) -> None:
    body = gzip.compress(json.dumps({"retry_after": 2, "detail": "zipped"}).encode())
    first = streamed(429, body, {"Content-Encoding": "gzip"})
    last = streamed(429, body, {"Content-Encoding": "gzip"})
    transport, _inner, rec = make([first, last], max_attempts=2)
    response = await send(mode, transport, "GET")
    assert rec.delays == [2.0]
    assert response.json()["detail"] == "zipped"


async def test_large_or_unsized_429_body_is_not_read(mode: str) -> None:
    big = json.dumps({"retry_after": 9, "pad": "x" * 70_000}).encode()
    first = streamed(429, big)
    no_length = httpx.Response(
        429, headers={"Content-Type": "application/json"}, stream=ChunkStream(b'{"retry_after": 9}')
    )
    transport, _inner, rec = make([first, no_length, ok()])
    assert (await send(mode, transport, "GET")).status_code == 200
    assert rec.delays == pytest.approx([0.1, 0.2])  # backoff, the bodies were not read
    assert not first.stream.consumed  # type: ignore[attr-defined]


async def test_502_html_retried_for_get(mode: str) -> None:
    bad = httpx.Response(502, html="<html><body>Bad gateway</body></html>")
    transport, inner, rec = make([bad, ok()])
    response = await send(mode, transport, "GET")
    assert response.status_code == 200
    assert inner.calls == 2
    assert rec.delays == [0.1]


async def test_502_html_not_retried_for_post(mode: str) -> None:
    bad = httpx.Response(502, html="<html><body>Bad gateway</body></html>")
    transport, inner, rec = make([bad])
    response = await send(mode, transport, "POST", json={"input": {}})
    assert response.status_code == 502
    assert "Bad gateway" in response.text
    assert inner.calls == 1
    assert rec.delays == []


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_idempotent_statuses_retried_for_get(mode: str, status: int) -> None:
    transport, inner, _rec = make([httpx.Response(status), ok()])
    assert (await send(mode, transport, "GET")).status_code == 200
    assert inner.calls == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
async def test_non_idempotent_5xx_not_retried(mode: str, method: str, status: int) -> None:
    transport, inner, _rec = make([httpx.Response(status)])
    response = await send(mode, transport, method, json={})
    assert response.status_code == status
    assert inner.calls == 1


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 501])
async def test_other_statuses_never_retried(mode: str, status: int) -> None:
    transport, inner, _rec = make([httpx.Response(status)])
    assert (await send(mode, transport, "GET")).status_code == status
    assert inner.calls == 1


async def test_query_method_retried(mode: str) -> None:
    transport, inner, _rec = make([httpx.Response(503), ok()])
    response = await send(
        mode, transport, "QUERY", content=b"flux", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200
    assert inner.bodies == [b"flux", b"flux"]


async def test_idempotent_extension_marks_post(mode: str) -> None:
    transport, inner, _rec = make([httpx.Response(500), ok()])
    request = httpx.Request("POST", URL + "/cancel", extensions={"replicate.idempotent": True})
    assert (await send_request(mode, transport, request)).status_code == 200
    assert inner.calls == 2


async def test_idempotent_extension_false_overrides_method(mode: str) -> None:
    transport, inner, _rec = make([httpx.Response(500)])
    request = httpx.Request("GET", URL, extensions={"replicate.idempotent": False})
    assert (await send_request(mode, transport, request)).status_code == 500
    assert inner.calls == 1


async def test_custom_status_codes(mode: str) -> None:
    transport, inner, rec = make([httpx.Response(429)], retry_status_codes=[503])
    assert (await send(mode, transport, "POST", json={})).status_code == 429
    assert inner.calls == 1 and rec.delays == []
    transport, _inner, _rec = make([httpx.Response(503), ok()], retry_status_codes=[503])
    assert (await send(mode, transport, "GET")).status_code == 200


async def test_custom_methods(mode: str) -> None:
    transport, inner, rec = make([httpx.Response(503)], retryable_methods=["head"])
    assert (await send(mode, transport, "GET")).status_code == 503
    assert inner.calls == 1 and rec.delays == []
    transport, _inner, _rec = make([httpx.Response(503), ok()], retryable_methods=["head"])
    assert (await send(mode, transport, "HEAD")).status_code == 200


# ------------------------------------------------------------------------------------------
# Transport errors
# ------------------------------------------------------------------------------------------

PRE_SEND = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError]
AFTER_SEND = [httpx.ReadTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError]


@pytest.mark.parametrize("error", PRE_SEND)
async def test_connect_phase_errors_retried_for_post(mode: str, error: type[Exception]) -> None:
    transport, inner, _rec = make([error("boom"), ok()])
    response = await send(mode, transport, "POST", json={"input": {"a": 1}})
    assert response.status_code == 200
    assert inner.bodies == [b'{"input":{"a":1}}'] * 2


@pytest.mark.parametrize("error", AFTER_SEND)
async def test_after_send_errors_not_retried_for_post(mode: str, error: type[Exception]) -> None:
    exc = error("boom")
    transport, inner, rec = make([exc])
    with pytest.raises(error) as info:
        await send(mode, transport, "POST", json={})
    assert info.value is exc
    assert inner.calls == 1
    assert rec.delays == []


@pytest.mark.parametrize("error", PRE_SEND + AFTER_SEND)
async def test_transport_errors_retried_for_get(mode: str, error: type[Exception]) -> None:
    transport, inner, _rec = make([error("boom"), ok()])
    assert (await send(mode, transport, "GET")).status_code == 200
    assert inner.calls == 2


@pytest.mark.parametrize(
    "error",
    [httpx.WriteTimeout, httpx.CloseError, httpx.LocalProtocolError, httpx.UnsupportedProtocol],
)
async def test_other_transport_errors_not_retried(mode: str, error: type[Exception]) -> None:
    transport, inner, _rec = make([error("boom")])
    with pytest.raises(error):
        await send(mode, transport, "GET")
    assert inner.calls == 1


async def test_subclasses_of_httpx_errors_are_recognised(mode: str) -> None:
    class WrappedReadTimeout(httpx.ReadTimeout):
        pass

    transport, _inner, _rec = make([WrappedReadTimeout("slow"), ok()])
    assert (await send(mode, transport, "GET")).status_code == 200


# ------------------------------------------------------------------------------------------
# Exhaustion, caps, deadline
# ------------------------------------------------------------------------------------------


async def test_max_attempts_returns_last_response(mode: str) -> None:
    responses = [httpx.Response(503, text=f"try {n}") for n in range(3)]
    transport, inner, rec = make(list(responses), max_attempts=3)
    response = await send(mode, transport, "GET")
    assert response.status_code == 503
    assert response.text == "try 2"
    assert inner.calls == 3
    assert rec.delays == pytest.approx([0.1, 0.2])


async def test_max_attempts_raises_last_error(mode: str) -> None:
    errors = [httpx.ConnectError(f"refused {n}") for n in range(4)]
    transport, inner, rec = make(list(errors), max_attempts=4)
    with pytest.raises(httpx.ConnectError) as info:
        await send(mode, transport, "POST", json={})
    assert info.value is errors[-1]
    assert inner.calls == 4
    assert len(rec.delays) == 3


async def test_single_attempt_never_retries(mode: str) -> None:
    transport, inner, _rec = make([httpx.Response(503)], max_attempts=1)
    assert (await send(mode, transport, "GET")).status_code == 503
    assert inner.calls == 1


async def test_retry_after_capped_at_max_backoff_wait(mode: str) -> None:
    transport, _inner, rec = make(
        [
            httpx.Response(429, headers={"Retry-After": "3600"}),
            httpx.Response(429, headers={"Retry-After": http_date(NOW + 7200)}),
            httpx.Response(429, json={"retry_after": 999}),
            ok(),
        ],
        max_backoff_wait=5,
    )
    assert (await send(mode, transport, "GET")).status_code == 200
    assert rec.delays == [5.0, 5.0, 5.0]


async def test_backoff_capped_at_max_backoff_wait(mode: str) -> None:
    transport, _inner, rec = make(
        [httpx.Response(503)] * 6 + [ok()], backoff_factor=1, max_backoff_wait=10
    )
    assert (await send(mode, transport, "GET")).status_code == 200
    assert rec.delays == [1, 2, 4, 8, 10, 10]


async def test_jittered_delays_within_bounds(mode: str) -> None:
    rng = random.Random(7)
    transport, _inner, rec = make(
        [httpx.Response(503)] * 5 + [ok()], jitter_ratio=0.5, _uniform=rng.uniform
    )
    await send(mode, transport, "GET")
    for n, delay in enumerate(rec.delays, start=1):
        base = 0.1 * 2 ** (n - 1)
        assert base * 0.5 <= delay <= base * 1.5


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, delay: float) -> None:
        self.now += delay


async def test_deadline_prevents_retry_past_it(mode: str) -> None:
    clock = FakeClock()
    transport, inner, rec = make([httpx.Response(429, headers={"Retry-After": "5"})], _clock=clock)
    request = httpx.Request("GET", URL, extensions={"replicate.deadline": clock.now + 4})
    assert (await send_request(mode, transport, request)).status_code == 429
    assert inner.calls == 1
    assert rec.delays == []


async def test_deadline_allows_retries_that_fit(mode: str) -> None:
    clock = FakeClock()
    rec = Recorder(on_sleep=clock.advance)
    outcomes: list[Outcome] = [
        httpx.Response(503, headers={"Retry-After": "3"}),
        httpx.Response(503, headers={"Retry-After": "3"}),
        httpx.Response(503, headers={"Retry-After": "3"}),
    ]
    transport, inner, rec = make(outcomes, rec, _clock=clock)
    request = httpx.Request("GET", URL, extensions={"replicate.deadline": clock.now + 7})
    response = await send_request(mode, transport, request)
    assert response.status_code == 503
    assert rec.delays == [3.0, 3.0]  # the third delay would end at +9 > +7
    assert inner.calls == 3


async def test_deadline_applies_to_transport_errors(mode: str) -> None:
    clock = FakeClock()
    transport, inner, _rec = make([httpx.ConnectError("x")], _clock=clock, backoff_factor=2)
    request = httpx.Request("GET", URL, extensions={"replicate.deadline": clock.now + 1})
    with pytest.raises(httpx.ConnectError):
        await send_request(mode, transport, request)
    assert inner.calls == 1


# ------------------------------------------------------------------------------------------
# Replayability
# ------------------------------------------------------------------------------------------


async def test_generator_body_not_resent(mode: str) -> None:
    transport, inner, _rec = make([httpx.Response(429, headers={"Retry-After": "1"})])
    response = await send(mode, transport, "POST", content=generator_body(mode))
    assert response.status_code == 429
    assert inner.calls == 1
    assert inner.bodies == [b"chunk-1chunk-2"]


async def test_generator_body_not_resent_after_connect_error(mode: str) -> None:
    exc = httpx.ConnectError("refused")
    transport, inner, _rec = make([exc])
    with pytest.raises(httpx.ConnectError):
        await send(mode, transport, "PUT", content=generator_body(mode))
    assert inner.calls == 1


async def test_replayable_stream_is_rewound(mode: str) -> None:
    stream = Rewindable(b"0123456789")
    transport, inner, _rec = make([httpx.Response(429), ok()])
    request = httpx.Request("POST", URL, stream=stream)
    assert (await send_request(mode, transport, request)).status_code == 200
    assert inner.bodies == [b"0123456789", b"0123456789"]
    assert stream.rewinds == 1


async def test_stream_declaring_not_replayable_is_not_resent(mode: str) -> None:
    stream = Rewindable(b"0123456789", replayable=False)
    transport, _inner, _rec = make([httpx.Response(429)])
    request = httpx.Request("POST", URL, stream=stream)
    assert (await send_request(mode, transport, request)).status_code == 429
    assert stream.rewinds == 0


async def test_failing_rewind_returns_first_outcome(mode: str) -> None:
    class Broken(Rewindable):
        def rewind(self) -> None:
            raise OSError("cannot seek")

    transport, inner, rec = make([httpx.Response(429)])
    request = httpx.Request("POST", URL, stream=Broken(b"abc"))
    response = await send_request(mode, transport, request)
    assert response.status_code == 429
    assert inner.calls == 1
    assert rec.delays == []


async def test_multipart_seekable_file_rewound_and_resent(mode: str) -> None:
    upload = io.BytesIO(b"file-content-" * 100)
    transport, inner, _rec = make([httpx.ConnectError("refused"), ok()])
    response = await send(
        mode, transport, "POST", files={"content": ("a.bin", upload, "application/octet-stream")}
    )
    assert response.status_code == 200
    assert len(inner.bodies) == 2
    assert inner.bodies[0] == inner.bodies[1]
    assert b"file-content-" * 100 in inner.bodies[1]


async def test_multipart_unseekable_file_not_resent(mode: str) -> None:
    transport, inner, _rec = make([httpx.Response(429)])
    response = await send(
        mode, transport, "POST", files={"content": ("a.bin", NotSeekable(b"xyz"))}
    )
    assert response.status_code == 429
    assert inner.calls == 1


# ------------------------------------------------------------------------------------------
# Closing, logging, delegation
# ------------------------------------------------------------------------------------------


async def test_retried_responses_closed_before_sleeping(mode: str) -> None:
    first = streamed(503, b'{"detail": "unavailable"}')
    seen: list[bool] = []
    rec = Recorder(on_sleep=lambda d: seen.append(first.stream.closed))  # type: ignore[attr-defined]
    transport, _inner, rec = make([first, ok()], rec)
    assert (await send(mode, transport, "GET")).status_code == 200
    assert seen == [True]


async def test_each_retry_logged_without_query_or_headers(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport, _inner, _rec = make([httpx.Response(503), httpx.ConnectError("x"), ok()])
    caplog.set_level(logging.DEBUG, logger="replicate")
    await send(
        mode,
        transport,
        "GET",
        "https://user:pw@api.replicate.com/v1/files/abc?signature=SECRET-SIG",
        headers={"Authorization": "Bearer r8_TOKEN"},
    )
    retries = [r for r in caplog.records if r.name == "replicate" and r.levelno == logging.INFO]
    assert len(retries) == 2
    first, second = (r.getMessage() for r in retries)
    assert "GET https://api.replicate.com/v1/files/abc" in first
    assert "status 503" in first and "0.10s" in first
    assert "ConnectError" in second and "0.20s" in second
    for record in caplog.records:
        text = record.getMessage()
        for secret in ("SECRET-SIG", "r8_TOKEN", "signature", "pw@", "user:"):
            assert secret not in text


async def test_decision_to_stop_logged_at_debug(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="replicate")
    transport, _inner, _rec = make([httpx.Response(429)])
    await send(mode, transport, "POST", content=generator_body(mode))
    assert any("cannot be replayed" in r.getMessage() for r in caplog.records)


def test_close_delegates() -> None:
    transport, inner, _rec = make([])
    transport.close()
    assert inner.closed


async def test_aclose_delegates() -> None:
    class Async(httpx.AsyncBaseTransport):
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    inner = Async()
    await RetryTransport(inner).aclose()
    assert inner.closed
    sync_inner = ScriptedTransport([])
    await RetryTransport(httpx.HTTPTransport()).aclose()  # sync-only transports: close()
    transport = RetryTransport(sync_inner)
    transport.close()
    assert sync_inner.closed


async def test_sync_only_transport_in_async_client_raises_type_error() -> None:
    class SyncOnly(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return ok()

    transport = RetryTransport(SyncOnly())
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TypeError, match="async_transport"):
            await client.get(URL)


def test_async_only_transport_in_sync_client_raises_type_error() -> None:
    class AsyncOnly(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return ok()

    with httpx.Client(transport=RetryTransport(AsyncOnly())) as client, pytest.raises(TypeError):
        client.get(URL)


def test_decide_is_pure_and_counts_attempts() -> None:
    transport = RetryTransport(
        httpx.MockTransport(lambda r: ok()), max_attempts=3, jitter_ratio=0, _now=lambda: NOW
    )
    get = httpx.Request("GET", URL)
    post = httpx.Request("POST", URL, json={})
    assert transport.decide(get, httpx.Response(503), 1) == pytest.approx(0.1)
    assert transport.decide(get, httpx.Response(503), 2) == pytest.approx(0.2)
    assert transport.decide(get, httpx.Response(503), 3) is None
    assert transport.decide(post, httpx.Response(503), 1) is None
    assert transport.decide(post, httpx.Response(429, headers={"Retry-After": "9"}), 1) == 9
    assert transport.decide(post, httpx.ReadTimeout("x"), 1) is None
    assert transport.decide(post, httpx.ConnectTimeout("x"), 1) == pytest.approx(0.1)
    assert transport.decide(get, ValueError("not a transport error"), 1) is None


async def test_module_level_sleep_hooks(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import replicate._retry as retry_module

    delays: list[float] = []

    async def fake_async_sleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(retry_module, "_sleep", delays.append)
    monkeypatch.setattr(retry_module, "_async_sleep", fake_async_sleep)
    inner = ScriptedTransport([httpx.Response(503, headers={"Retry-After": "30"}), ok()])
    transport = RetryTransport(inner)
    assert (await send(mode, transport, "GET")).status_code == 200
    assert delays == [30.0]


class Counting(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Counts sends through real httpx transports."""

    def __init__(self) -> None:
        self.sync = httpx.HTTPTransport()
        self.async_ = httpx.AsyncHTTPTransport()
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return await self.async_.handle_async_request(request)

    def close(self) -> None:
        self.sync.close()

    async def aclose(self) -> None:
        await self.async_.aclose()


async def test_real_connection_refused_is_retried_for_post(mode: str) -> None:
    import socket

    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inner = Counting()
    rec = Recorder()
    transport = RetryTransport(
        inner, max_attempts=3, _sleep=rec.sleep, _async_sleep=rec.async_sleep
    )
    with pytest.raises(httpx.ConnectError):
        await send(mode, transport, "POST", f"http://127.0.0.1:{port}/v1/predictions", json={})
    assert inner.calls == 3
    assert len(rec.delays) == 2
