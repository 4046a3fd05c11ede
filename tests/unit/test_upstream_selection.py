"""Selectors and host health on real pools, with a clock the test drives."""

from __future__ import annotations

import random

from propylon.config.model import BALANCERS, BalancerSpec, EjectionSpec
from propylon.stats import UpstreamStats
from propylon.upstream.health import HostHealth
from propylon.upstream.pool import UpstreamPool
from propylon.upstream.selector import (
    ConsistentHash,
    PowerOfTwo,
    Tables,
    selector_for,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Request:
    """What a balancer reads: headers (lower-case names) and the caller."""

    principal = None

    def __init__(self, **headers: str) -> None:
        self.headers = {k.replace("_", "-").encode(): v.encode() for k, v in headers.items()}

    def header(self, lower_name: bytes) -> bytes | None:
        return self.headers.get(lower_name)


def _pools(*ports: int) -> list[UpstreamPool]:
    return [
        UpstreamPool(
            "http",
            "10.0.0.1",
            port,
            max_idle=1,
            connect_timeout=1.0,
            idle_timeout=1.0,
            stats=UpstreamStats(),
        )
        for port in ports
    ]


def test_sticky_sessions_expire_after_expiry_without_use_and_refresh_on_use() -> None:
    clock = Clock()
    pools = _pools(1, 2)
    sticky = selector_for(
        BalancerSpec(kind="sticky_cookie", key="sid", expiry=10.0), pools, clock, Tables()
    )
    alice = Request(cookie="sid=alice")
    assert sticky.pick(alice) is pools[0]
    clock.now += 9.0
    assert sticky.pick(alice) is pools[0]  # refreshed: another 10 s from here
    clock.now += 9.0
    assert sticky.pick(alice) is pools[0]
    clock.now += 10.5
    # Expired: leased anew from the round robin, which had moved on to the second host.
    assert sticky.pick(alice) is pools[1]


def test_requests_without_the_cookie_share_one_session_as_in_ocelot() -> None:
    clock = Clock()
    pools = _pools(1, 2)
    sticky = selector_for(BalancerSpec(kind="sticky_cookie", key="sid"), pools, clock, Tables())
    assert [sticky.pick(Request()) for _ in range(3)] == [pools[0]] * 3


def test_a_sticky_host_taken_out_loses_its_sessions_to_the_others() -> None:
    clock = Clock()
    pools = _pools(1, 2)
    sticky = selector_for(BalancerSpec(kind="sticky_cookie", key="sid"), pools, clock, Tables())
    bob = Request(cookie="sid=bob")
    assert sticky.pick(bob) is pools[0]
    pools[0].health.out_until = clock.now + 30.0
    assert sticky.pick(bob) is pools[1]
    pools[0].health.out_until = 0.0
    assert sticky.pick(bob) is pools[1]  # the session moved with it


def test_a_host_leaving_the_ring_moves_only_its_own_keys() -> None:
    clock = Clock()
    pools = _pools(1, 2, 3, 4)
    full = ConsistentHash(pools, clock, "header", "x-tenant")
    fewer = ConsistentHash(pools[:3], clock, "header", "x-tenant")
    keys = [f"tenant-{n}" for n in range(2000)]
    before = {k: full.owner(k) for k in keys}
    after = {k: fewer.owner(k) for k in keys}
    moved = [k for k in keys if before[k] is not after[k]]
    assert moved and all(before[k] is pools[3] for k in moved)
    # Every host owns a fair share (within 40 % of even).
    shares = [sum(1 for k in keys if before[k] is p) for p in pools]
    assert min(shares) > 0.6 * len(keys) / 4, shares
    # Taking a host out moves the same keys, and only those.
    pools[3].health.out_until = clock.now + 5.0
    assert {k: full.owner(k) for k in keys} == after


def test_every_selector_skips_out_hosts_and_says_none_when_all_are_out() -> None:
    clock = Clock()
    for kind in BALANCERS:  # every balancer the config can name, new ones included
        pools = _pools(1, 2, 3)
        spec = BalancerSpec(kind=kind, key="k", weights=(1, 1, 1))
        selector = selector_for(spec, pools, clock, Tables())
        pools[0].health.out_until = pools[2].health.out_until = clock.now + 1.0
        picks = {selector.pick(Request(k="v", cookie="k=v")) for _ in range(6)}
        assert picks == {pools[1]}, kind
        pools[1].health.out_until = clock.now + 1.0
        assert selector.pick(Request(k="v")) is None, kind
        clock.now += 1.0  # the cool-downs are over: all back
        assert selector.pick(Request(k="v")) is not None, kind


def test_power_of_two_compares_two_and_releases() -> None:
    clock = Clock()
    pools = _pools(1, 2)
    p2c = PowerOfTwo(pools, clock, random.Random(7))
    picks = [p2c.pick(Request()) for _ in range(4)]
    # With two hosts both are compared every time: the one with fewer in flight wins.
    assert picks.count(pools[0]) == picks.count(pools[1]) == 2
    p2c.release(pools[1])
    p2c.release(pools[1])
    assert [p2c.pick(Request()) for _ in range(2)] == [pools[1], pools[1]]


def test_passive_ejection_grows_while_the_host_keeps_failing_and_resets_on_success() -> None:
    health = HostHealth("h:1", EjectionSpec(consecutive_failures=3, base=2.0, max=5.0))
    now = 10.0
    health.failed("refused", now)
    health.failed("refused", now)
    assert health.available(now)
    health.failed("reset", now)
    assert not health.available(now + 1.9) and health.available(now + 2.0)
    # Back on probation: one failure is enough, for twice as long, then capped at max.
    health.failed("5xx", now + 2.0)
    assert not health.available(now + 5.9) and health.available(now + 6.0)
    health.failed("5xx", now + 6.0)
    assert not health.available(now + 10.9) and health.available(now + 11.0)
    assert health.last_cause == "5xx"
    health.succeeded()
    health.failed("refused", now + 12.0)
    assert health.available(now + 12.0)  # one failure after a success: still in


def test_active_checks_take_a_host_out_and_bring_an_ejected_one_back() -> None:
    health = HostHealth("h:1", EjectionSpec(consecutive_failures=1, base=60.0))
    health.check_failed(2, "check_refused")
    assert health.available(0.0)
    health.check_failed(2, "check_refused")
    assert not health.available(1e9)
    health.check_passed(1)
    assert health.available(0.0)
    health.failed("refused", 0.0)
    assert not health.available(1.0)
    health.check_passed(1)  # before the 60 s cool-down is over
    assert health.available(1.0)


def test_a_retry_gets_another_host_the_balancers_way_when_there_is_one() -> None:
    clock = Clock()
    pools = _pools(1, 2, 3)
    request = Request(x_tenant="acme")
    for kind in ("round_robin", "least_connection", "hash", "first"):
        selector = selector_for(BalancerSpec(kind=kind, key="x-tenant"), pools, clock, Tables())
        tried = selector.pick(request)
        assert tried is not None
        again = selector.pick_again(request, tried)
        assert again is not None and again is not tried, kind
    lc = selector_for(BalancerSpec(kind="least_connection"), pools, clock, Tables())
    tried = lc.pick(request)
    assert tried is pools[0]
    assert lc.pick_again(request, tried) is pools[1]
    assert lc.leases == [1, 1, 0]  # the refused second pick of pools[0] was released
    single = selector_for(BalancerSpec(), pools[:1], clock, Tables())
    assert single.pick_again(request, pools[0]) is pools[0]
    pools[0].health.out_until = clock.now + 1.0
    assert single.pick_again(request, pools[0]) is None


def test_a_new_host_set_carries_the_in_flight_counts_of_the_hosts_that_stay() -> None:
    """A discovered name's addresses changed: the replacement selector knows what is in
    flight on the hosts both sets have, and ignores releases of a host it does not have."""
    clock = Clock()
    a, b, c = _pools(1, 2, 3)
    for kind in ("least_connection", "power_of_two"):
        old = selector_for(BalancerSpec(kind=kind), [a, b], clock, Tables())
        while old.pick(Request()) is not b:  # b busy: 1 in flight, a: some
            pass
        for _ in range(3):
            old.pick(Request())
        new = selector_for(BalancerSpec(kind=kind), [b, c], clock, Tables())
        new.adopt(old)
        counts = getattr(new, "leases" if kind == "least_connection" else "in_flight")
        before = getattr(old, "leases" if kind == "least_connection" else "in_flight")
        assert counts == [before[1], 0] and counts[0] >= 1
        new.release(a)  # an exchange on a removed host ends: nothing to count down
        assert counts == [before[1], 0]
        new.release(b)
        assert counts == [before[1] - 1, 0]
        assert new.pick_again(Request(), a) in (b, c)  # the host tried has left the set


def test_weighted_and_round_robin_selectors_carry_their_state_and_no_hosts_is_a_503() -> None:
    clock = Clock()
    a, b, c = _pools(1, 2, 3)
    old = selector_for(BalancerSpec(kind="round_robin"), [a, b, c], clock, Tables())
    assert [old.pick(Request()) for _ in range(2)] == [a, b]
    new = selector_for(BalancerSpec(kind="round_robin"), [a, b, c], clock, Tables())
    new.adopt(old)
    assert new.pick(Request()) is c  # goes on where the old one was
    smaller = selector_for(BalancerSpec(kind="round_robin"), [a, b], clock, Tables())
    smaller.adopt(new)
    assert smaller.pick(Request()) is a
    weighted = selector_for(
        BalancerSpec(kind="weighted_round_robin", weights=(5, 1)), [a, b], clock, Tables()
    )
    weighted.pick(Request())
    grown = selector_for(
        BalancerSpec(kind="weighted_round_robin", weights=(5, 1, 1)), [a, b, c], clock, Tables()
    )
    grown.adopt(weighted)
    assert grown.current[:2] == weighted.current and grown.current[2] == 0  # type: ignore[attr-defined]
    assert selector_for(BalancerSpec(), [], clock, Tables()).pick(Request()) is None
