"""What ``GET /stats`` returns: a (merged) snapshot made readable.

The shape is stable: every key is always present (zeros and nulls rather than missing keys),
latencies are milliseconds, times are ISO 8601 UTC. Routes are named by their label (a name or
a template) and their key path in the config file, never by a request path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from propylon.stats.counters import NO_SPANS
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
    routes = [_route(route) for route in snapshot["routes"]]
    upstreams = {host: _upstream(up) for host, up in snapshot["upstreams"].items()}
    return {
        "uptime_seconds": round(snapshot["uptime_seconds"], 3),
        "started_at": _iso(snapshot["started_at"]),
        "workers": workers,
        "workers_reporting": snapshot["workers_reporting"],
        "totals": _totals(snapshot, routes),
        "routes": routes,
        "upstreams": upstreams,
        "tracing": dict(snapshot.get("tracing") or NO_SPANS),
        **(
            {
                "discovery": {
                    name: {**state, "resolved_at": _iso(state["resolved_at"])}
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
        "unrouted": unrouted,
    }


def _route(route: dict[str, Any]) -> dict[str, Any]:
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
        "bytes_in": route["bytes_in"],
        "bytes_out": route["bytes_out"],
    }


def _upstream(up: dict[str, Any]) -> dict[str, Any]:
    report = {
        "requests": up["requests"],
        "errors": up["errors"],
        "last_error": up["last_error"],
        "last_error_at": _iso(up["last_error_at"]),
    }
    health = up.get("health")
    if health is not None:
        report["health"] = {**health, "ejected_until": _iso(health["ejected_until"])}
    return report


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
