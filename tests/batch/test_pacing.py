"""The client-side pacer: reservations, adaptation to 429s, and what counts as a create."""

from __future__ import annotations

import pytest

from replicate._pacing import CREATE, OTHER, Pacer, RateBucket, is_create_request


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reservations_are_spaced_by_the_rate_after_the_burst() -> None:
    clock = Clock()
    bucket = RateBucket(600, burst=2, clock=clock)  # 10 per second
    waits = [bucket.reserve() for _ in range(5)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2:] == pytest.approx([0.1, 0.2, 0.3])
    clock.now += 10  # a long pause refills only up to the burst
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_a_429_halves_the_rate_and_blocks_until_retry_after() -> None:
    clock = Clock()
    bucket = RateBucket(600, burst=1, clock=clock)
    bucket.throttled(3.0)
    assert bucket.per_minute == pytest.approx(300)
    assert bucket.reserve() == pytest.approx(3.0)
    for _ in range(10):
        bucket.throttled(None)
    assert bucket.per_minute == pytest.approx(600 / 8)  # the floor


def test_accepted_answers_recover_the_configured_rate_and_never_exceed_it() -> None:
    bucket = RateBucket(600, clock=Clock())
    bucket.throttled(0)
    for _ in range(100):
        bucket.accepted()
    assert bucket.per_minute == pytest.approx(600)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "10"])
def test_bad_rates_are_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        RateBucket(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "create"),
    [
        ("POST", "/v1/predictions", True),
        ("POST", "/v1/models/a/b/predictions", True),
        ("POST", "/v1/deployments/a/b/predictions", True),
        ("POST", "/prefix/v1/models/a/b/versions/v/trainings", True),
        ("GET", "/v1/predictions", False),
        ("POST", "/v1/predictions/abc/cancel", False),
        ("POST", "/v1/files", False),
    ],
)
def test_what_counts_as_a_create(method: str, path: str, create: bool) -> None:
    assert is_create_request(method, path) is create


def test_the_pacer_counts_each_category_and_the_last_minute() -> None:
    clock = Clock()
    pacer = Pacer(600, 3000, clock=clock)
    pacer.reserve(CREATE)
    pacer.reserve(OTHER)
    pacer.reserve(OTHER)
    assert pacer.sent == {CREATE: 1, OTHER: 2} and pacer.total == 3
    assert pacer.per_minute() == 3
    clock.now += 61
    assert pacer.per_minute() == 0
    pacer.answered(CREATE, 429, 2.0)
    assert pacer.throttles == 1
    assert pacer.buckets[CREATE].per_minute == pytest.approx(300)
    assert pacer.buckets[OTHER].per_minute == pytest.approx(3000)
