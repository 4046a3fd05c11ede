"""Merging worker snapshots, and the JSON that GET /stats shows."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from propylon.stats import GatewayStats, merge_snapshots, render_report

ROUTES = [("GET /profiles/{id}", "Routes[0]"), ("* /down", "Routes[1]")]
HOSTS = ["127.0.0.1:9001", "127.0.0.1:9002"]


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def worker(
    started_at: float = 1_700_000_000.0, uptime: float = 10.0, routes: Any = ROUTES
) -> GatewayStats:
    mono = FakeClock(0.0)
    wall = FakeClock(started_at)
    stats = GatewayStats(routes, HOSTS, clock=mono, wall_clock=wall)
    mono.now = uptime
    return stats


# A worker's life as a list of events, so hypothesis can build arbitrary snapshots.
events = st.lists(
    st.one_of(
        st.tuples(st.just("route"), st.integers(0, 1), st.sampled_from([200, 404, 502, 0])),
        st.tuples(st.just("unrouted"), st.sampled_from([400, 404, 405, 413, 418])),
        st.tuples(st.just("upstream"), st.sampled_from(HOSTS), st.sampled_from(["reset", "x"])),
    ),
    max_size=30,
)


def snapshot_of(history: list[tuple[Any, ...]], at: float) -> dict[str, Any]:
    stats = worker(started_at=at, uptime=at / 1e8)
    for n, event in enumerate(history):
        stats.request_seen()
        if event[0] == "route":
            stats.routes[event[1]].begin()
            stats.routes[event[1]].end(event[2], 0.001 * (n + 1), n, 2 * n)
        elif event[0] == "unrouted":
            stats.unrouted(event[1])
        else:
            up = stats.upstreams[event[1]]
            up.wall_clock = FakeClock(at + n)
            up.request()
            up.error(event[2])
    return stats.snapshot()


@given(events, events, events)
def test_merge_is_associative(a: Any, b: Any, c: Any) -> None:
    sa, sb, sc = snapshot_of(a, 1.7e9), snapshot_of(b, 1.6e9), snapshot_of(c, 1.8e9)
    left = merge_snapshots([merge_snapshots([sa, sb]), sc])
    right = merge_snapshots([sa, merge_snapshots([sb, sc])])
    flat = merge_snapshots([sa, sb, sc])
    assert left == right == flat
    assert flat["workers_reporting"] == 3


def test_merge_adds_counters_and_keeps_oldest_start_and_latest_error() -> None:
    one, two = worker(1_700_000_100.0, uptime=5.0), worker(1_700_000_000.0, uptime=105.0)
    for stats, n in ((one, 2), (two, 3)):
        for _ in range(n):
            stats.request_seen()
            stats.routes[0].begin()
            stats.routes[0].end(200, 0.002, 10, 20)
        stats.unrouted(404)
    one.routes[1].begin()  # still in flight
    one.upstreams[HOSTS[1]].wall_clock = FakeClock(50.0)
    one.upstreams[HOSTS[1]].error("reset")
    two.upstreams[HOSTS[1]].wall_clock = FakeClock(40.0)
    two.upstreams[HOSTS[1]].error("refused")
    one.spans = lambda: {"spans_exported": 7, "spans_dropped": 1}
    two.spans = lambda: {"spans_exported": 3, "spans_dropped": 2}
    inputs = [one.snapshot(), two.snapshot()]
    before = copy.deepcopy(inputs)

    merged = merge_snapshots(inputs)
    assert inputs == before
    assert merged["workers_reporting"] == 2
    assert merged["started_at"] == 1_700_000_000.0
    assert merged["uptime_seconds"] == 105.0
    assert merged["requests"] == 5
    assert merged["unrouted"] == {"404": 2}
    assert merged["tracing"] == {"spans_exported": 10, "spans_dropped": 3}
    profiles = merged["routes"][0]
    assert profiles["requests"] == 5
    assert profiles["responses"] == [0, 5, 0, 0, 0]
    assert (profiles["bytes_in"], profiles["bytes_out"]) == (50, 100)
    assert profiles["latency"]["count"] == 5
    assert merged["routes"][1]["in_flight"] == 1
    assert merged["upstreams"][HOSTS[1]] == {
        "requests": 0,
        "errors": 2,
        "queue_full": 0,
        "queue_timeouts": 0,
        "last_error": "reset",
        "last_error_at": 50.0,
    }


def test_workers_with_different_route_lists_merge_by_route_not_position() -> None:
    old = worker(routes=[("GET /a", "Routes[0]")])
    new = worker(routes=[("GET /b", "Routes[0]"), ("GET /a", "Routes[1]")])
    for stats in (old, new):
        stats.routes[-1].begin()
        stats.routes[-1].end(200, 0.001, 0, 0)
    merged = merge_snapshots([old.snapshot(), new.snapshot()])
    counts = {(r["route"], r["source"]): r["requests"] for r in merged["routes"]}
    assert counts == {
        ("GET /a", "Routes[0]"): 1,
        ("GET /b", "Routes[0]"): 0,
        ("GET /a", "Routes[1]"): 1,
    }


def test_merge_refuses_a_snapshot_of_another_version() -> None:
    snap = worker().snapshot()
    with pytest.raises(ValueError, match="version"):
        merge_snapshots([snap, {**snap, "version": 99}])


def test_report_shape_and_values() -> None:
    stats = worker(started_at=1_700_000_000.25, uptime=42.123456)
    stats.request_seen()
    stats.request_seen()
    stats.request_seen()
    for ms in range(1, 101):
        stats.routes[0].begin()
        stats.routes[0].end(200 if ms <= 90 else 404, ms / 1000, 100, 1000)
    stats.routes[0].begin()
    stats.routes[1].begin()
    stats.routes[1].upstream_timeout()
    stats.routes[1].end(504, 1.0, 0, 0)
    stats.unrouted(404)
    stats.unrouted(405)
    stats.unrouted(418)
    stats.upstreams[HOSTS[1]].wall_clock = FakeClock(1_700_000_005.5)
    stats.upstreams[HOSTS[1]].error("timeout")

    report = render_report(stats.snapshot(), workers=1)
    assert orjson.loads(orjson.dumps(report)) == report
    assert set(report) == {
        "uptime_seconds",
        "started_at",
        "workers",
        "workers_reporting",
        "totals",
        "routes",
        "upstreams",
        "tracing",
    }
    # No span exporter: the counters are there, at zero.
    assert report["tracing"] == {"spans_exported": 0, "spans_dropped": 0}
    assert report["uptime_seconds"] == 42.123
    assert report["started_at"] == "2023-11-14T22:13:20.250Z"
    assert (report["workers"], report["workers_reporting"]) == (1, 1)

    totals = report["totals"]
    assert totals["requests"] == 3
    assert totals["routed_requests"] == 102
    assert totals["in_flight"] == 1
    assert totals["responses"] == {"1xx": 0, "2xx": 90, "3xx": 0, "4xx": 13, "5xx": 1}
    assert (totals["bytes_in"], totals["bytes_out"]) == (10_000, 100_000)
    assert (totals["upstream_errors"], totals["upstream_timeouts"]) == (0, 1)
    assert totals["unrouted"]["not_found"] == 1
    assert totals["unrouted"]["method_not_allowed"] == 1
    assert totals["unrouted"]["other"] == 1
    assert totals["unrouted"]["too_large"] == 0

    profiles, down = report["routes"]
    assert set(profiles) == {
        "route",
        "source",
        "requests",
        "in_flight",
        "responses",
        "latency_ms",
        "upstream_errors",
        "upstream_timeouts",
        "retries",
        "retries_refused",
        "bytes_in",
        "bytes_out",
        "rate_limit",
        "circuit_breaker",
    }
    assert profiles["rate_limit"] is None and profiles["circuit_breaker"] is None
    assert (profiles["route"], profiles["source"]) == ("GET /profiles/{id}", "Routes[0]")
    assert profiles["requests"] == 101 and profiles["in_flight"] == 1
    assert profiles["responses"] == {"1xx": 0, "2xx": 90, "3xx": 0, "4xx": 10, "5xx": 0}
    latency = profiles["latency_ms"]
    assert set(latency) == {"count", "p50", "p90", "p99", "max"}
    assert latency["count"] == 100
    assert latency["p50"] == pytest.approx(50, rel=0.05)
    assert latency["p90"] == pytest.approx(90, rel=0.05)
    assert latency["p99"] == pytest.approx(99, rel=0.05)
    assert latency["max"] == 100.0
    assert down["upstream_timeouts"] == 1 and down["responses"]["5xx"] == 1

    assert report["upstreams"][HOSTS[0]] == {
        "requests": 0,
        "errors": 0,
        "queue_full": 0,
        "queue_timeouts": 0,
        "last_error": None,
        "last_error_at": None,
    }
    assert report["upstreams"][HOSTS[1]]["last_error"] == "timeout"
    assert report["upstreams"][HOSTS[1]]["last_error_at"] == "2023-11-14T22:13:25.500Z"


def test_report_of_an_idle_route_has_null_latencies() -> None:
    report = render_report(worker().snapshot(), workers=4)
    assert report["workers"] == 4
    assert report["routes"][0]["latency_ms"] == {
        "count": 0,
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
    }


def test_report_of_nothing_at_all() -> None:
    report = render_report(merge_snapshots([]), workers=2)
    assert report["workers_reporting"] == 0
    assert report["started_at"] is None
    assert report["routes"] == [] and report["upstreams"] == {}


def test_a_host_is_up_in_the_merged_report_only_if_every_worker_has_it_up() -> None:
    from propylon.config.model import EjectionSpec
    from propylon.upstream.health import HostHealth

    one, two = worker(), worker()
    healthy = HostHealth(HOSTS[0])
    ejected = HostHealth(HOSTS[0], EjectionSpec(consecutive_failures=1, base=30.0))
    ejected.failed("refused", 100.0)
    one.upstreams[HOSTS[0]].health = lambda: healthy.snapshot(
        lambda: 110.0, lambda: 1_700_000_000.0
    )
    two.upstreams[HOSTS[0]].health = lambda: ejected.snapshot(
        lambda: 110.0, lambda: 1_700_000_000.0
    )
    report = render_report(merge_snapshots([one.snapshot(), two.snapshot()]), workers=2)
    assert report["upstreams"][HOSTS[0]]["health"] == {
        "up": False,
        "ejected_until": "2023-11-14T22:13:40.000Z",
        "checked_down": False,
        "consecutive_failures": 1,
        "last_cause": "refused",
    }
    assert "health" not in report["upstreams"][HOSTS[1]]


def test_discovered_names_merge_to_the_freshest_set_and_any_workers_failure() -> None:
    def worker(addresses: list[str], at: float | None, error: str | None) -> dict[str, Any]:
        stats = GatewayStats([("GET /p", "routes[0]")], [])
        state = {
            "addresses": addresses,
            "resolved_at": at,
            "failing": error is not None,
            "last_error": error,
            "ttl": 30.0,
        }
        stats.discovery = lambda: {"profiles": dict(state)}
        return stats.snapshot()

    fresh = worker(["10.0.0.1", "10.0.0.2"], 1_700_000_100.0, None)
    stale = worker(["10.0.0.1"], 1_700_000_000.0, "timed out after 2s")
    for order in ([fresh, stale], [stale, fresh]):
        merged = merge_snapshots(order)
        assert merged["discovery"]["profiles"] == {
            "addresses": ["10.0.0.1", "10.0.0.2"],
            "resolved_at": 1_700_000_100.0,
            "failing": True,
            "last_error": "timed out after 2s",
            "ttl": 30.0,
        }
    report = render_report(merge_snapshots([fresh]), workers=1)
    assert report["discovery"]["profiles"]["resolved_at"] == "2023-11-14T22:15:00.000Z"
    assert "discovery" not in render_report(merge_snapshots([]), workers=0)


def _limited_and_guarded(admitted: int, refused: int, failures: int) -> GatewayStats:
    """A worker whose first route has a rate limit and second a breaker (opened by
    ``failures`` >= 2 failed outcomes)."""
    from propylon.config.model import BreakerSpec
    from propylon.policies.circuit_breaker import CircuitBreaker
    from propylon.stats.counters import RateLimitDecisions

    stats = worker()
    decisions = RateLimitDecisions()
    decisions.admitted, decisions.refused = admitted, refused
    stats.routes[0].rate_limit = decisions
    breaker = CircuitBreaker(BreakerSpec(minimum_throughput=2, break_duration=5.0))
    for _ in range(failures):
        breaker.record(True, 0.0)
    stats.routes[1].breaker = breaker.snapshot
    return stats


def test_rate_limit_decisions_and_breaker_states_add_up_over_workers() -> None:
    one = _limited_and_guarded(admitted=3, refused=1, failures=2)
    two = _limited_and_guarded(admitted=2, refused=4, failures=0)
    three = _limited_and_guarded(admitted=0, refused=0, failures=0)
    snaps = [one.snapshot(), two.snapshot(), three.snapshot()]
    before = copy.deepcopy(snaps)
    flat = merge_snapshots(snaps)
    assert snaps == before
    assert flat == merge_snapshots([merge_snapshots(snaps[:2]), snaps[2]])
    assert flat == merge_snapshots([snaps[0], merge_snapshots(snaps[1:])])

    limited, guarded = render_report(flat, workers=3)["routes"]
    assert limited["rate_limit"] == {
        "admitted": 5,
        "refused": 5,
        "unidentified": 0,
        "unavailable": 0,
    }
    assert limited["circuit_breaker"] is None and guarded["rate_limit"] is None
    # One worker opened its circuit: the route reads open, and says how many workers agree.
    assert guarded["circuit_breaker"] == {
        "state": "open",
        "workers": {"closed": 2, "half_open": 0, "open": 1},
        "transitions": {"closed": 0, "half_open": 0, "open": 1},
    }
    closed = render_report(merge_snapshots(snaps[1:]), workers=2)["routes"][1]
    assert closed["circuit_breaker"]["state"] == "closed"
