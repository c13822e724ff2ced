"""The per-key token bucket (`control.ratelimit.RateLimiter`), on a clock the test moves."""

from __future__ import annotations

import math

import pytest

from pullzone.control.errors import RateLimited
from pullzone.control.ratelimit import MAX_BUCKETS, RateLimiter


class Clock:
    """Time as the test says: starts at 1000 s, moves only by `advance`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(rate: float, burst: int) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(rate, burst, clock=clock), clock


def test_a_burst_then_the_wait_for_the_next_token() -> None:
    rl, _ = limiter(rate=20, burst=5)
    assert [rl.take("k") for _ in range(5)] == [None] * 5
    assert rl.take("k") == pytest.approx(1 / 20)


def test_waiting_as_told_lets_the_next_call_through() -> None:
    rl, clock = limiter(rate=20, burst=1)
    assert rl.take("k") is None
    wait = rl.take("k")
    assert wait is not None
    clock.advance(wait)
    assert rl.take("k") is None
    assert rl.take("k") == pytest.approx(1 / 20)


@pytest.mark.parametrize("rate", [20.0, 3.0, 7.0, 0.1])
def test_floating_point_never_refuses_a_token_that_is_due(rate: float) -> None:
    rl, clock = limiter(rate=rate, burst=1)
    for _ in range(1000):
        assert rl.take("k") is None
        clock.advance(1 / rate)


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    rl, clock = limiter(rate=10, burst=3)
    for _ in range(3):
        assert rl.take("k") is None
    clock.advance(0.2)  # two tokens back
    assert [rl.take("k") is None for _ in range(3)] == [True, True, False]
    clock.advance(3600)  # idle for long: never more than the burst
    assert [rl.take("k") is None for _ in range(4)] == [True, True, True, False]


def test_a_refused_call_takes_nothing() -> None:
    rl, clock = limiter(rate=1, burst=1)
    assert rl.take("k") is None
    waits = []
    for _ in range(4):
        waits.append(rl.take("k"))
        clock.advance(0.25)
    assert waits == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert rl.take("k") is None


def test_the_sustained_rate() -> None:
    rl, clock = limiter(rate=20, burst=100)
    admitted = 0
    for _ in range(10 * 200):  # 200 calls a second for 10 s
        admitted += rl.take("k") is None
        clock.advance(1 / 200)
    assert admitted == pytest.approx(100 + 20 * 10, abs=1)


def test_each_key_has_its_own_bucket() -> None:
    rl, _ = limiter(rate=1, burst=2)
    assert [rl.take("a") for _ in range(2)] == [None, None]
    assert rl.take("a") is not None
    assert [rl.take("b") for _ in range(2)] == [None, None]
    assert rl.take("b") is not None


def test_fractional_rates() -> None:
    rl, clock = limiter(rate=0.5, burst=1)
    assert rl.take("k") is None
    assert rl.take("k") == pytest.approx(2.0)
    clock.advance(1.5)
    assert rl.take("k") == pytest.approx(0.5)


def test_a_rate_of_zero_is_no_limit() -> None:
    rl, _ = limiter(rate=0, burst=0)
    assert not rl.enabled
    assert all(rl.take("k") is None for _ in range(10_000))
    assert len(rl) == 0


def test_a_clock_that_goes_back_refills_nothing() -> None:
    rl, clock = limiter(rate=1, burst=1)
    assert rl.take("k") is None
    clock.advance(-100)
    assert rl.take("k") == pytest.approx(1.0)
    clock.advance(100.5)  # back where it was, and half a second on
    assert rl.take("k") == pytest.approx(0.5)


def test_forget_gives_a_full_bucket() -> None:
    rl, _ = limiter(rate=1, burst=2)
    rl.take("k")
    rl.take("k")
    assert rl.take("k") is not None
    rl.forget("k")
    rl.forget("never-seen")
    assert rl.take("k") is None


def test_buckets_that_are_full_again_are_dropped() -> None:
    rl, clock = limiter(rate=10, burst=2)
    for i in range(MAX_BUCKETS):
        rl.take(f"key-{i}")
    assert len(rl) == MAX_BUCKETS
    rl.take("busy")
    rl.take("busy")
    clock.advance(0.1)  # the others are full again; "busy" got one token of two back
    rl.take("one-more")
    assert len(rl) == 2  # "busy" and "one-more": the rest were full, as new ones would be
    assert rl.take("busy") is None
    assert rl.take("busy") is not None


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(-1, 10), (math.nan, 10), (math.inf, 10), (1, 0), (20, -5)],
)
def test_invalid_limits(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)


def test_the_429_answer() -> None:
    refused = RateLimited(20.0, 0.05)
    assert refused.status == 429
    assert refused.message == (
        "rate limit exceeded: at most 20 requests per second per key; retry after 1 s"
    )
    assert refused.headers == {"Retry-After": "1"}
    assert RateLimited(0.25, 3.2).headers == {"Retry-After": "4"}
    assert "at most 0.25 requests" in RateLimited(0.25, 3.2).message
    assert "at most 1000000 requests" in RateLimited(1e6, 1e-6).message
