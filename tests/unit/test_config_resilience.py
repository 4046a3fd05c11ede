"""Balancer, health and circuit-breaker keys in both formats: values, merging, key paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from propylon.config.model import BalancerSpec, BreakerSpec, EjectionSpec, HealthCheckSpec
from tests.unit.test_config_native import load as load_native
from tests.unit.test_config_native import problems as native_problems
from tests.unit.test_config_ocelot import load, problems, warnings


def _route(path: str = "/a", **kw: Any) -> dict[str, Any]:
    return {
        "UpstreamPathTemplate": path,
        "DownstreamPathTemplate": path,
        "DownstreamHostAndPorts": [{"Host": "a", "Port": 1}, {"Host": "b", "Port": 2}],
        **kw,
    }


def test_sticky_sessions_default_to_ocelots_cookie_and_expiry(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "Routes": [
                _route(LoadBalancerOptions={"Type": "CookieStickySessions"}),
                _route(
                    "/b",
                    LoadBalancerOptions={"type": "cookiestickysessions", "Key": "s", "Expiry": 500},
                ),
            ]
        },
    )
    assert [r.balancer for r in config.routes] == [
        BalancerSpec(kind="sticky_cookie", key=".AspNetCore.Session", expiry=1200.0),
        BalancerSpec(kind="sticky_cookie", key="s", expiry=0.5),
    ]


def test_global_balancer_applies_by_route_keys_and_merges_empty_fields(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "Routes": [
                _route("/a", Key="in"),
                _route("/b", Key="out"),
                _route("/c", Key="in", LoadBalancerOptions={"Type": "CookieStickySessions"}),
                _route("/d", Key="in", LoadBalancerOptions={"Type": "NoLoadBalancer"}),
            ],
            "GlobalConfiguration": {
                "LoadBalancerOptions": {
                    "Type": "LeastConnection",
                    "Key": "g",
                    "Expiry": 1000,
                    "RouteKeys": ["in"],
                }
            },
        },
    )
    assert [r.balancer.kind for r in config.routes] == [
        "least_connection",
        "round_robin",
        "sticky_cookie",
        "first",
    ]
    assert config.routes[2].balancer == BalancerSpec(kind="sticky_cookie", key="g", expiry=1.0)


def test_an_unknown_balancer_type_is_an_error_naming_its_key(tmp_path: Path) -> None:
    assert problems(tmp_path, {"Routes": [_route(LoadBalancerOptions={"Type": "Random"})]}) == [
        "Routes[0].LoadBalancerOptions.Type: error: unknown load balancer 'Random': use "
        "NoLoadBalancer, RoundRobin, LeastConnection or CookieStickySessions"
    ]


def test_qos_old_names_win_and_the_global_fills_in(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "Routes": [
                _route(
                    QoSOptions={
                        "ExceptionsAllowedBeforeBreaking": 3,
                        "MinimumThroughput": 9,
                        "BreakDuration": 2000,
                    }
                ),
                _route("/b"),
            ],
            "GlobalConfiguration": {
                "QoSOptions": {"DurationOfBreak": 1000, "TimeoutValue": 1500, "FailureRatio": 0.3}
            },
        },
    )
    first, second = config.routes
    # DurationOfBreak (old, global) beats BreakDuration (new, route), as Ocelot merges.
    assert first.breaker == BreakerSpec(
        minimum_throughput=3, break_duration=1.0, failure_ratio=0.3, sampling_duration=10.0
    )
    assert first.timeout == second.timeout == 1.5
    assert second.breaker == BreakerSpec(
        minimum_throughput=100, break_duration=1.0, failure_ratio=0.3
    )


def test_qos_out_of_range_values_take_ocelots_defaults_with_a_warning(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "Routes": [
                _route(QoSOptions={"MinimumThroughput": 1, "BreakDuration": 500, "Timeout": 5})
            ]
        },
    )
    assert config.routes[0].breaker == BreakerSpec(minimum_throughput=100, break_duration=5.0)
    assert config.routes[0].timeout == 30.0
    assert warnings(config) == [
        "Routes[0].QoSOptions.Timeout: 5 ms is outside (10, 86400000): 30000 ms is used, "
        "as in Ocelot",
        "Routes[0].QoSOptions.MinimumThroughput: 1 is below 2: Ocelot (and propylon) break "
        "after 100 failures instead",
        "Routes[0].QoSOptions.BreakDuration: 500 ms is not above 500: Ocelot (and propylon) "
        "break for 5000 ms instead",
    ]


def test_qos_that_asks_for_nothing_has_no_breaker(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {"Routes": [_route(QoSOptions={"MinimumThroughput": 0, "Timeout": 0}), _route("/b")]},
    )
    assert [r.breaker for r in config.routes] == [None, None]


def test_a_negative_qos_value_is_an_error_naming_its_key(tmp_path: Path) -> None:
    assert problems(tmp_path, {"Routes": [_route(QoSOptions={"DurationOfBreak": -1})]}) == [
        "Routes[0].QoSOptions.DurationOfBreak: error: must not be negative, got -1"
    ]


NATIVE = """\
propylon: 1
routes:
  - path: /a
    downstream:
      hosts: [a:1, b:2]
{downstream}
{route}
"""


def _native(downstream: str = "", route: str = "") -> str:
    return NATIVE.format(downstream=downstream, route=route)


def test_native_settings_are_read(tmp_path: Path) -> None:
    text = _native(
        "      balancer: {type: hash, claim: tenant}\n"
        "      ejection: {consecutive_failures: 3, base: 2s, max: 1m}\n"
        "      health_check: {path: /ready, interval: 10s, timeout: 1s, healthy_threshold: 2}",
        "    circuit_breaker: {failure_ratio: 0.25, minimum_throughput: 20, "
        "sampling_duration: 30s, break_duration: 1m}",
    )
    spec = load_native(tmp_path, text).routes[0]
    assert spec.balancer == BalancerSpec(kind="hash", key="tenant", hash_on="claim")
    assert spec.ejection == EjectionSpec(consecutive_failures=3, base=2.0, max=60.0)
    assert spec.health_check == HealthCheckSpec(
        path="/ready", interval=10.0, timeout=1.0, healthy_threshold=2
    )
    assert spec.breaker == BreakerSpec(
        minimum_throughput=20, break_duration=60.0, failure_ratio=0.25, sampling_duration=30.0
    )
    plain = load_native(
        tmp_path, _native("      balancer: least_connection\n      ejection: false")
    )
    assert plain.routes[0].balancer == BalancerSpec(kind="least_connection")
    assert plain.routes[0].ejection is None and plain.routes[0].breaker is None


def test_native_mistakes_name_their_key_paths(tmp_path: Path) -> None:
    text = _native(
        "      balancer: {type: weighted_round_robin, weights: [1]}\n"
        "      ejection: {consecutive_failures: 0, bsae: 1s}\n"
        "      health_check: {path: health, interval: 1s, timeout: 2s}",
        "    circuit_breaker: {failure_ratio: 2, break_duration: soon}",
    )
    assert native_problems(tmp_path, text) == [
        "routes[0].downstream.balancer.weights: error: must list one positive whole weight "
        "per host (2), got [1]",
        "routes[0].downstream.ejection.bsae: error: unknown key; expected one of "
        "consecutive_failures, base, max",
        "routes[0].downstream.ejection.consecutive_failures: error: must be at least 1, got 0",
        "routes[0].downstream.health_check.path: error: must be a path starting with /, "
        "got 'health'",
        "routes[0].downstream.health_check.timeout: error: must not exceed the interval (1s)",
        "routes[0].circuit_breaker.failure_ratio: error: must be in (0, 1], got 2",
        "routes[0].circuit_breaker.break_duration: error: must be a number and a unit: ms, s, "
        "m, h or d (e.g. 500ms, 1s, 1.5m, 1h, 1d), got 'soon'",
    ]
    sticky = _native("      balancer: {type: sticky_cookie}")
    assert native_problems(tmp_path, sticky) == [
        "routes[0].downstream.balancer.cookie: error: sticky_cookie needs the cookie's name"
    ]
