"""Edges of the client's retry policy that mutation testing found unguarded: the deadline
boundary, jitter, zone-less HTTP dates, and the debug line when a body cannot be replayed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from replicate._retry import DEADLINE_EXTENSION, RetryTransport, backoff_delay, parse_retry_after


def transport(**kwargs: object) -> RetryTransport:
    return RetryTransport(httpx.MockTransport(lambda r: httpx.Response(200)), **kwargs)  # type: ignore[arg-type]


def request(deadline: float | None = None, **kwargs: object) -> httpx.Request:
    req = httpx.Request("GET", "https://api.replicate.com/v1/predictions/x", **kwargs)  # type: ignore[arg-type]
    if deadline is not None:
        req.extensions[DEADLINE_EXTENSION] = deadline
    return req


@pytest.mark.parametrize(("slack", "retried"), [(0.0, True), (-0.001, False), (0.001, True)])
def test_a_delay_that_ends_exactly_at_the_deadline_is_still_taken(
    slack: float, retried: bool
) -> None:
    t = transport(backoff_factor=1.0, jitter_ratio=0.0, _clock=lambda: 100.0)
    delay = t.decide(request(deadline=101.0 + slack), httpx.Response(503), 1)
    assert (delay == 1.0) if retried else (delay is None)


def test_jitter_is_applied_with_the_configured_ratio() -> None:
    seen: list[tuple[float, float]] = []

    def top(a: float, b: float) -> float:
        seen.append((a, b))
        return b

    t = transport(backoff_factor=1.0, jitter_ratio=0.5, _uniform=top)
    assert t.decide(request(), httpx.Response(503), 1) == 1.5
    assert seen == [(-0.5, 0.5)]


def test_no_jitter_draw_without_a_ratio() -> None:
    def draw(a: float, b: float) -> float:
        raise AssertionError("no jitter was asked for")

    assert (
        backoff_delay(1, backoff_factor=2.0, jitter_ratio=0.0, max_backoff_wait=60, uniform=draw)
        == 2.0
    )


@pytest.mark.parametrize(
    "value",
    ["Sun, 06 Nov 1994 08:49:47 -0000", "Sun Nov  6 08:49:47 1994"],
)
def test_a_date_without_a_zone_is_utc(value: str) -> None:
    now = 784111777.0  # 1994-11-06 08:49:37 UTC: the date is 10 seconds later
    assert parse_retry_after(value, now) == pytest.approx(10.0)


def test_retry_after_header_is_read_case_insensitively() -> None:
    t = transport(_now=lambda: 0.0)
    assert t.decide(request(), httpx.Response(503, headers={"Retry-After": "7"}), 1) == 7.0


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="replicate"):
        yield caplog


def test_an_unreplayable_body_is_not_retried_and_says_why(
    debug_log: pytest.LogCaptureFixture,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x"

    req = httpx.Request("PUT", "https://api.replicate.com/v1/files/x", content=chunks())
    assert transport().decide(req, httpx.Response(503), 1) is None
    assert [r.getMessage() for r in debug_log.records] == [
        "Not retrying PUT https://api.replicate.com/v1/files/x after status 503: "
        "the request body cannot be replayed"
    ]


def test_a_retry_past_the_deadline_says_why(debug_log: pytest.LogCaptureFixture) -> None:
    t = transport(backoff_factor=1.0, jitter_ratio=0.0, _clock=lambda: 100.0)
    assert t.decide(request(deadline=100.5), httpx.Response(503), 1) is None
    assert [r.getMessage() for r in debug_log.records] == [
        "Not retrying GET https://api.replicate.com/v1/predictions/x after status 503: "
        "a 1.00s delay would pass the deadline"
    ]
