"""Per-route and per-upstream counters, and one worker's snapshot of them."""

from __future__ import annotations

import orjson

from propylon.stats import GatewayStats, RouteStats, UpstreamStats


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_route_counts_requests_classes_bytes_and_in_flight() -> None:
    route = RouteStats("GET /profiles/{id}", "Routes[0]")
    for _ in range(4):
        route.begin()
    assert route.requests == 4 and route.in_flight == 4
    route.end(200, 0.010, 10, 100)
    route.end(204, 0.020, 0, 0)
    route.end(404, 0.001, 5, 50)
    assert route.in_flight == 1
    route.end(502, 0.030, 1, 2)
    route.upstream_error()
    route.upstream_timeout()
    assert route.in_flight == 0
    assert route.responses == [0, 2, 0, 1, 1]
    assert (route.bytes_in, route.bytes_out) == (16, 152)
    assert (route.upstream_errors, route.upstream_timeouts) == (1, 1)
    assert route.latency.count == 4
    assert route.latency.max == 0.030


def test_status_classes_at_their_edges() -> None:
    route = RouteStats("r")
    for status in (100, 199, 200, 299, 301, 399, 400, 499, 500, 599):
        route.begin()
        route.end(status, 0.001, 0, 0)
    assert route.responses == [2, 2, 2, 2, 2]


def test_an_exchange_without_status_is_done_but_in_no_class() -> None:
    route = RouteStats("r")
    route.begin()
    route.end(0, 0.001, 0, 0)
    route.begin()
    route.end(600, 0.001, 0, 0)
    assert route.in_flight == 0
    assert sum(route.responses) == 0
    assert route.latency.count == 2


def test_upstream_last_error_names_a_kind_never_a_message() -> None:
    clock = FakeClock(1_700_000_000.0)
    up = UpstreamStats(wall_clock=clock)
    up.request()
    up.request()
    up.error("refused")
    assert (up.requests, up.errors, up.last_error, up.last_error_at) == (
        2,
        1,
        "refused",
        1_700_000_000.0,
    )
    clock.now += 5
    up.error("[Errno 111] Connect call failed ('10.0.0.7', 8080)")
    assert up.errors == 2
    assert up.last_error == "other"
    assert up.last_error_at == 1_700_000_005.0


def test_gateway_snapshot_is_plain_json_with_everything_counted() -> None:
    mono = FakeClock(100.0)
    wall = FakeClock(1_700_000_000.0)
    stats = GatewayStats(
        [("GET /a/{id}", "Routes[0]"), ("* /b", "Routes[1]")],
        ["10.0.0.1:80", "10.0.0.2:81"],
        clock=mono,
        wall_clock=wall,
    )
    for _ in range(3):
        stats.request_seen()
    stats.unrouted(404)
    stats.unrouted(404)
    stats.unrouted(405)
    stats.routes[1].begin()
    stats.routes[1].end(200, 0.005, 3, 4)
    stats.upstreams["10.0.0.2:81"].request()
    stats.upstreams["10.0.0.2:81"].error("timeout")
    mono.now = 112.5

    snap = stats.snapshot()
    assert orjson.loads(orjson.dumps(snap)) == snap
    assert snap["uptime_seconds"] == 12.5
    assert snap["started_at"] == 1_700_000_000.0
    assert snap["requests"] == 3
    assert snap["unrouted"] == {"404": 2, "405": 1}
    assert [(r["route"], r["source"]) for r in snap["routes"]] == [
        ("GET /a/{id}", "Routes[0]"),
        ("* /b", "Routes[1]"),
    ]
    assert snap["routes"][1]["responses"] == [0, 1, 0, 0, 0]
    assert snap["routes"][1]["latency"]["count"] == 1
    assert snap["upstreams"]["10.0.0.2:81"] == {
        "requests": 1,
        "errors": 1,
        "queue_full": 0,
        "queue_timeouts": 0,
        "last_error": "timeout",
        "last_error_at": 1_700_000_000.0,
    }
    assert snap["upstreams"]["10.0.0.1:80"]["last_error"] is None


def test_snapshot_is_a_copy_not_a_view() -> None:
    stats = GatewayStats(["r"], [])
    stats.routes[0].begin()
    snap = stats.snapshot()
    stats.routes[0].end(200, 0.001, 0, 0)
    assert snap["routes"][0]["responses"] == [0, 0, 0, 0, 0]
    assert snap["routes"][0]["in_flight"] == 1


def test_bare_labels_are_accepted() -> None:
    stats = GatewayStats(["GET /x"], [])
    assert stats.routes[0].label == "GET /x"
    assert stats.routes[0].source == ""
