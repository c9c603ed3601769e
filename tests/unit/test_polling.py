"""Pure waiting decisions (docs/predictions.md)."""

from __future__ import annotations

import datetime
import itertools
import math

import httpx
import pytest

from replicate import _polling as p


@pytest.mark.parametrize(
    ("status", "completed_at", "terminal"),
    [
        ("succeeded", None, True),
        ("failed", None, True),
        ("canceled", None, True),
        ("aborted", None, True),
        ("starting", "2024-01-01T00:00:00Z", False),
        ("processing", "2024-01-01T00:00:00Z", False),
        ("paused", None, False),
        ("paused", "2024-01-01T00:00:00Z", True),
        (None, None, False),
    ],
)
def test_is_terminal(status: str | None, completed_at: str | None, terminal: bool) -> None:
    assert p.is_terminal(status, completed_at) is terminal


def test_terminal_statuses() -> None:
    assert frozenset({"succeeded", "failed", "canceled", "aborted"}) == p.TERMINAL_STATUSES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("wait", True),
        ("wait=10", True),
        ("WAIT=5", True),
        ("respond-async, wait=10", True),
        ("wait;x=1", True),
        ("waiting", False),
        ("respond-async", False),
        ("", False),
        (None, False),
    ],
)
def test_preference_applied_wait(value: str | None, expected: bool) -> None:
    assert p.preference_applied_wait(value) is expected


def _response(status: int, body: dict[str, object], applied: str | None = "wait") -> httpx.Response:
    headers = {"Preference-Applied": applied} if applied else {}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("code", "status", "applied", "sent", "expected"),
    [
        (201, "processing", "wait", True, True),
        (201, "succeeded", "wait=10", True, True),
        (201, "starting", "wait", True, False),
        (202, "processing", "wait", True, False),
        (201, "processing", None, True, False),
        (201, "processing", "wait", False, False),
        (200, "processing", "wait", True, False),
    ],
)
def test_is_sync_complete(
    code: int, status: str, applied: str | None, sent: bool, expected: bool
) -> None:
    response = _response(code, {"status": status}, applied)
    assert p.is_sync_complete(response, sent) is expected
    assert p.is_sync_complete(response, sent, status) is expected


def test_is_create_complete() -> None:
    starting = _response(201, {"status": "starting"}, None)
    assert not p.is_create_complete(starting, False, "starting")
    assert p.is_create_complete(starting, False, "failed")
    assert p.is_create_complete(_response(201, {}, "wait"), True, "processing")
    assert not p.is_create_complete(_response(202, {}, "wait"), True, "processing")
    assert p.is_create_complete(starting, False, "weird", "2024-01-01")


def test_poll_delay_schedule() -> None:
    assert [p.poll_delay(n, 0.5) for n in range(1, 11)] == [0.5] * 10
    assert p.poll_delay(11, 0.5) == pytest.approx(0.6)
    assert p.poll_delay(12, 0.5) == pytest.approx(0.72)
    assert p.poll_delay(100, 0.5) == 5.0
    assert p.poll_delay(10**6, 0.5) == 5.0
    assert p.poll_delay(50, 10.0) == 10.0  # cap is max(interval, 5)
    assert p.poll_delay(50, 0.0) == 0.0
    delays = list(itertools.islice(p.poll_delays(1.0), 12))
    assert delays[:10] == [1.0] * 10
    assert delays[10] == pytest.approx(1.2)
    assert delays[11] == pytest.approx(1.44)
    assert all(a <= b for a, b in itertools.pairwise(delays))


def test_deadlines() -> None:
    assert p.deadline_after(None) is None
    assert p.deadline_after(math.inf) is None
    assert p.deadline_after(5, now=100.0) == 105.0
    assert p.remaining(None) is None
    assert p.remaining(105.0, now=100.0) == 5.0
    assert p.remaining(105.0, now=200.0) == 0.0
    assert p.sleep_time(1.0, None) == 1.0
    assert p.sleep_time(1.0, 100.5, now=100.0) == 0.5
    assert p.sleep_time(1.0, 110.0, now=100.0) == 1.0


@pytest.mark.parametrize("bad", ["1", True, object()])
def test_check_timeout_type(bad: object) -> None:
    with pytest.raises(TypeError, match="timeout"):
        p.check_timeout(bad)


def test_check_timeout_values() -> None:
    assert p.check_timeout(None) is None
    assert p.check_timeout(3) == 3.0
    assert p.check_timeout(0) == 0.0
    for bad in (-1, math.nan):
        with pytest.raises(ValueError, match="timeout"):
            p.check_timeout(bad)
    assert p.check_poll_interval(None) is None
    assert p.check_poll_interval(0) == 0.0
    with pytest.raises(ValueError, match="poll_interval"):
        p.check_poll_interval(-1)
    with pytest.raises(TypeError, match="poll_interval"):
        p.check_poll_interval("1")


@pytest.mark.parametrize(
    ("wait", "header"),
    [
        (True, "wait"),
        (False, None),
        (None, None),
        (0, None),
        (0.0, None),
        (10, "wait=10"),
        (10.2, "wait=11"),
        (0.1, "wait=1"),
        (60, "wait=60"),
        (61, "wait=60"),
        (1000.0, "wait=60"),
        (math.inf, "wait=60"),
    ],
)
def test_prefer_header(wait: object, header: str | None) -> None:
    assert p.prefer_header(wait) == header


def test_prefer_header_errors() -> None:
    with pytest.raises(ValueError, match="wait"):
        p.prefer_header(-1)
    with pytest.raises(ValueError, match="wait"):
        p.prefer_header(math.nan)
    with pytest.raises(TypeError, match="wait"):
        p.prefer_header("10")


def test_wait_read_timeout() -> None:
    assert p.wait_read_timeout(None) is None
    assert p.wait_read_timeout("wait") == 65.0
    assert p.wait_read_timeout("wait=10") == 15.0
    assert p.wait_read_timeout("wait=60") == 65.0


@pytest.mark.parametrize(
    ("value", "header"),
    [
        (None, None),
        (5, "5s"),
        (4.1, "5s"),
        (90, "90s"),
        (90.5, "91s"),
        (datetime.timedelta(minutes=1), "60s"),
        (datetime.timedelta(seconds=5, microseconds=1), "6s"),
        ("1h30m", "1h30m"),
        ("90", "90"),
        (" 2m ", "2m"),
    ],
)
def test_cancel_after_header(value: object, header: str | None) -> None:
    assert p.cancel_after_header(value) == header


def test_cancel_after_errors() -> None:
    for bad in (4, 4.0, datetime.timedelta(seconds=4), -10, math.inf, ""):
        with pytest.raises(ValueError, match="cancel_after"):
            p.cancel_after_header(bad)
    for bad in (True, [5], object()):
        with pytest.raises(TypeError, match="cancel_after"):
            p.cancel_after_header(bad)
