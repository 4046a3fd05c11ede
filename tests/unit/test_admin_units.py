"""The operations listener's pure parts: the address syntax, URL redaction, and how the
fine latency histogram becomes Prometheus buckets."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from propylon.admin.config_view import redact_url
from propylon.admin.metrics import render_metrics
from propylon.config.admin import is_loopback, parse_listen
from propylon.stats.counters import GatewayStats


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9901", ("127.0.0.1", 9901)),
        ("[::1]:9901", ("::1", 9901)),
        ("localhost:0", ("localhost", 0)),
        ("0.0.0.0:9901", ("0.0.0.0", 9901)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9901", ":9901", "::1:9901", "host:99999", "host:x", "a b:1"])
def test_bad_listen_addresses_say_why(text: str) -> None:
    with pytest.raises(ValueError, match=r"HOST:PORT|IPv6|port|host"):
        parse_listen(text)


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert not is_loopback("admin.internal")  # a name may resolve anywhere


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@cache:6379/0", "redis://<redacted>@cache:6379/0"),
        ("redis://user:pw@cache/0", "redis://user:<redacted>@cache/0"),
        ("https://tok@keys.example/jwks", "https://<redacted>@keys.example/jwks"),
        ("https://keys.example/jwks", "https://keys.example/jwks"),
        ("redis://:pw@[::1]:6379", "redis://<redacted>@[::1]:6379"),
    ],
)
def test_url_passwords_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_latency_buckets_count_what_was_recorded() -> None:
    stats = GatewayStats([("GET /a", "Routes[0]")], [])
    route = stats.routes[0]
    for seconds in (0.0002, 0.0002, 0.003, 0.04, 0.04, 0.04, 7.0, 90.0):
        route.begin()
        route.end(200, seconds, 0, 0)
    snapshot = stats.snapshot()
    text = render_metrics(snapshot, [snapshot], 1).decode()
    (family,) = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "propylon_route_duration_seconds"
    ]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.0005"] == 2
    assert buckets["0.0025"] == 2 and buckets["0.005"] == 3
    assert buckets["0.025"] == 3 and buckets["0.05"] == 6
    assert buckets["5.0"] == 6 and buckets["10.0"] == 7
    assert buckets["+Inf"] == 8
    (total,) = [s.value for s in family.samples if s.name.endswith("_sum")]
    exact = 0.0004 + 0.003 + 0.12 + 7.0 + 90.0
    assert abs(total - exact) / exact < 0.05


def test_rate_limit_and_breaker_families_appear_only_where_routes_have_them() -> None:
    from propylon.config.model import BreakerSpec
    from propylon.policies.circuit_breaker import CircuitBreaker
    from propylon.stats.counters import RateLimitDecisions

    plain = GatewayStats([("GET /a", "Routes[0]")], [])
    text = render_metrics(plain.snapshot(), [], 1).decode()
    assert "rate_limit" not in text and "circuit_breaker" not in text

    stats = GatewayStats([("GET /a", "Routes[0]"), ("GET /b/{id}", "Routes[1]")], [])
    decisions = RateLimitDecisions()
    decisions.admitted, decisions.refused, decisions.unavailable = 7, 3, 1
    stats.routes[0].rate_limit = decisions
    breaker = CircuitBreaker(BreakerSpec(minimum_throughput=1, break_duration=5.0))
    breaker.record(True, 0.0)
    stats.routes[1].breaker = breaker.snapshot
    families = {
        f.name: f
        for f in text_string_to_metric_families(render_metrics(stats.snapshot(), [], 1).decode())
    }

    def value(name: str, sample: str, **labels: str) -> float:
        (found,) = [
            s.value
            for s in families[name].samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        return float(found)

    a = {"route": "GET /a", "source": "Routes[0]"}
    b = {"route": "GET /b/{id}", "source": "Routes[1]"}
    decided = "propylon_rate_limit_decisions"
    assert value(decided, decided + "_total", **a, decision="admitted") == 7
    assert value(decided, decided + "_total", **a, decision="refused") == 3
    assert value(decided, decided + "_total", **a, decision="unavailable") == 1
    assert value(decided, decided + "_total", **a, decision="unidentified") == 0
    assert {s.labels["route"] for s in families[decided].samples} == {"GET /a"}
    state = "propylon_circuit_breaker_state"
    assert value(state, state, **b) == 2  # open
    assert len(families[state].samples) == 1
    workers = "propylon_circuit_breaker_workers"
    assert value(workers, workers, **b, state="open") == 1
    assert value(workers, workers, **b, state="closed") == 0
    moved = "propylon_circuit_breaker_transitions"
    assert value(moved, moved + "_total", **b, state="open") == 1
    assert value(moved, moved + "_total", **b, state="half_open") == 0


def test_our_exposition_writes_what_prometheus_client_writes() -> None:
    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from propylon.admin.metrics import SnapshotCollector, exposition
    from propylon.config.model import BreakerSpec
    from propylon.policies.circuit_breaker import CircuitBreaker
    from propylon.stats.counters import RateLimitDecisions

    odd = 'GET /a"b\\c\nd/{id} \u00fc'  # a name with every character the format escapes
    stats = GatewayStats([(odd, "Routes[0]"), ("GET /b", "Routes[1]")], ["h:1", "h:2"])
    for n in range(50):
        stats.request_seen()
        stats.routes[n % 2].begin()
        stats.routes[n % 2].end(200 + 100 * (n % 4), 0.0001 * 2**n % 3.0, 10, 20)
    stats.unrouted(404)
    stats.unrouted(418)
    stats.upstreams["h:1"].error("reset")
    stats.routes[0].rate_limit = RateLimitDecisions()
    stats.routes[1].breaker = CircuitBreaker(BreakerSpec(minimum_throughput=1)).snapshot
    workers = [{"state": {"kind": "redis", "down": True, "outages": 2, "failed_decisions": 5}}]
    collector = SnapshotCollector(stats.snapshot(), workers, 2)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    assert exposition(collector.collect()) == generate_latest(registry)
