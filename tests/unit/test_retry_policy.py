"""The retry budget and backoff on a driven clock, and which failures qualify."""

from __future__ import annotations

import random

from propylon.config.model import RetrySpec
from propylon.upstream.retry import SENT, STALE, UNSENT, RetryBudget, RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_allows_its_share_of_requests() -> None:
    clock = Clock()
    budget = RetryBudget(0.2, 0.0, clock)
    # A full bucket holds one retry (no floor); after that, one per five requests.
    granted = [budget.withdraw(requests) for requests in range(1, 101)]
    # The first request's deposit tops up a full bucket, so it is lost: 20, not 21.
    assert sum(granted) == 20
    assert granted[:2] == [True, False]


def test_the_floor_refills_per_second_and_a_quiet_spell_saves_at_most_ten_seconds() -> None:
    clock = Clock()
    budget = RetryBudget(0.0, 3.0, clock)
    assert sum(budget.withdraw(0) for _ in range(100)) == 30
    clock.now += 1.0
    assert sum(budget.withdraw(0) for _ in range(100)) == 3
    clock.now += 3600.0
    assert sum(budget.withdraw(0) for _ in range(100)) == 30


def test_a_busy_route_retries_its_share_beyond_the_floor() -> None:
    """10,000 requests in a second, every one failing: 20% of them retried (plus what the
    bucket held), not just the floor's 3."""
    clock = Clock()
    budget = RetryBudget(0.2, 3.0, clock)
    granted = 0
    for requests in range(1, 10_001):
        clock.now += 0.0001
        granted += budget.withdraw(requests)
    assert 2000 <= granted <= 2000 + 30 + 3


def test_the_floor_and_the_share_do_not_add_up() -> None:
    """Over 60 s of total outage at 100 requests a second, the retries are the larger of
    the share (20 a second) and the floor (3 a second), not their sum: the upstreams see at
    most 1.2x the requests, once what the bucket held is spent."""
    clock = Clock()
    budget = RetryBudget(0.2, 3.0, clock)
    granted = 0
    for requests in range(1, 6_001):
        clock.now += 0.01
        granted += budget.withdraw(requests)
    assert 1200 <= granted <= 1200 + 30
    quiet = RetryBudget(0.2, 3.0, clock)
    granted = 0
    for second in range(1, 61):  # 1 request a second: the floor governs
        clock.now += 1.0
        granted += sum(quiet.withdraw(second) for _ in range(10))
    assert 180 <= granted <= 180 + 30


def test_which_failures_qualify() -> None:
    default = RetryPolicy(RetrySpec(), Clock())
    assert default.qualifies(UNSENT, b"POST", True)
    assert default.qualifies(STALE, b"GET", False)
    assert not default.qualifies(STALE, b"GET", True)  # a body needs `methods` and a copy
    assert not default.qualifies(STALE, b"POST", False)
    assert not default.qualifies(SENT, b"GET", False)
    assert default.replay_limit == -1  # nothing listed: no body is ever kept
    listed = RetryPolicy(RetrySpec(methods=frozenset({"PUT"})), Clock())
    assert listed.qualifies(SENT, b"PUT", True) and not listed.qualifies(SENT, b"GET", False)
    assert listed.replay_limit == 64 * 1024


def test_backoff_is_full_jitter_doubling_up_to_the_ceiling() -> None:
    policy = RetryPolicy(RetrySpec(backoff=0.1, backoff_max=0.3), Clock(), random.Random(7))
    for retry, ceiling in ((1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)):
        waits = [policy.delay(retry) for _ in range(200)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # spread over the whole range, not a constant
    assert RetryPolicy(RetrySpec(backoff=0.0, backoff_max=0.0), Clock()).delay(3) == 0.0
