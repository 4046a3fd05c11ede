"""What ``GET /stats`` returns: a (merged) snapshot made readable.

The shape is stable: every key is always present (zeros and nulls rather than missing keys),
latencies are milliseconds, times are ISO 8601 UTC. Routes are named by their label (a name or
a template) and their key path in the config file, never by a request path. A route without
a rate limit or a circuit breaker has ``null`` for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from propylon.stats.counters import BREAKER_STATES, NO_SPANS, RATE_LIMIT_DECISIONS
from propylon.stats.histogram import LatencyHistogram

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

UNROUTED_OUTCOMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}
"""Responses the gateway gives before (or instead of) choosing a route; any other status is
counted as "other"."""

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def render_report(snapshot: dict[str, Any], *, workers: int) -> dict[str, Any]:
    routes = [route_report(route) for route in snapshot["routes"]]
    upstreams = {host: upstream_report(up) for host, up in snapshot["upstreams"].items()}
    return {
        "uptime_seconds": round(snapshot["uptime_seconds"], 3),
        "started_at": iso_time(snapshot["started_at"]),
        "workers": workers,
        "workers_reporting": snapshot["workers_reporting"],
        "totals": _totals(snapshot, routes),
        "routes": routes,
        "upstreams": upstreams,
        "tracing": dict(snapshot.get("tracing") or NO_SPANS),
        **(
            {
                "discovery": {
                    name: {**state, "resolved_at": iso_time(state["resolved_at"])}
                    for name, state in snapshot["discovery"].items()
                }
            }
            if "discovery" in snapshot
            else {}
        ),
    }


def _totals(snapshot: dict[str, Any], routes: list[dict[str, Any]]) -> dict[str, Any]:
    responses = dict.fromkeys(STATUS_CLASSES, 0)
    for route in routes:
        for name, n in route["responses"].items():
            responses[name] += n
    unrouted = {name: 0 for name in UNROUTED_OUTCOMES.values()}
    unrouted["other"] = 0
    for status_text, n in snapshot["unrouted"].items():
        status = int(status_text)
        unrouted[UNROUTED_OUTCOMES.get(status, "other")] += n
        if 100 <= status < 600:
            responses[STATUS_CLASSES[status // 100 - 1]] += n
    return {
        "requests": snapshot["requests"],
        "routed_requests": sum(route["requests"] for route in routes),
        "responses": responses,
        "in_flight": sum(route["in_flight"] for route in routes),
        "bytes_in": sum(route["bytes_in"] for route in routes),
        "bytes_out": sum(route["bytes_out"] for route in routes),
        "upstream_errors": sum(route["upstream_errors"] for route in routes),
        "upstream_timeouts": sum(route["upstream_timeouts"] for route in routes),
        "retries": sum(route["retries"] for route in routes),
        "retries_refused": sum(route["retries_refused"] for route in routes),
        "unrouted": unrouted,
    }


def route_report(route: dict[str, Any]) -> dict[str, Any]:
    histogram = LatencyHistogram.from_dict(route["latency"])
    latency: dict[str, Any] = {"count": histogram.count}
    for name, q in PERCENTILES:
        latency[name] = _ms(histogram.percentile(q))
    latency["max"] = _ms(histogram.max) if histogram.count else None
    return {
        "route": route["route"],
        "source": route["source"],
        "requests": route["requests"],
        "in_flight": route["in_flight"],
        "responses": dict(zip(STATUS_CLASSES, route["responses"], strict=True)),
        "latency_ms": latency,
        "upstream_errors": route["upstream_errors"],
        "upstream_timeouts": route["upstream_timeouts"],
        "retries": route["retries"],
        "retries_refused": route["retries_refused"],
        "bytes_in": route["bytes_in"],
        "bytes_out": route["bytes_out"],
        "rate_limit": _rate_limit(route.get("rate_limit")),
        "circuit_breaker": _breaker(route.get("circuit_breaker")),
    }


def _rate_limit(decisions: dict[str, Any] | None) -> dict[str, int] | None:
    """The route's limiter's decisions (None: the route has no rate limit)."""
    if decisions is None:
        return None
    return {name: int(decisions.get(name, 0)) for name in RATE_LIMIT_DECISIONS}


def _breaker(breaker: dict[str, Any] | None) -> dict[str, Any] | None:
    """The route's circuit: the most open state any worker has it in (each worker has its
    own breaker), how many workers have it in each state, transitions by state entered."""
    if breaker is None:
        return None
    workers = {name: int(breaker["workers"].get(name, 0)) for name in BREAKER_STATES}
    transitions = {name: int(breaker["transitions"].get(name, 0)) for name in BREAKER_STATES}
    state = next((name for name in reversed(BREAKER_STATES) if workers[name]), None)
    return {"state": state, "workers": workers, "transitions": transitions}


def upstream_report(up: dict[str, Any]) -> dict[str, Any]:
    report = {
        "requests": up["requests"],
        "errors": up["errors"],
        "queue_full": up["queue_full"],
        "queue_timeouts": up["queue_timeouts"],
        "last_error": up["last_error"],
        "last_error_at": iso_time(up["last_error_at"]),
    }
    health = up.get("health")
    if health is not None:
        report["health"] = {**health, "ejected_until": iso_time(health["ejected_until"])}
    return report


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def iso_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
