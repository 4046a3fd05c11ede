"""Adding worker snapshots together, so ``GET /stats`` on any worker answers for all of them.

Counters add; the gateway started when its first worker did and has been up as long as its
oldest worker; an upstream's last error is the most recent one any worker saw; rate-limit
decisions and circuit-breaker transitions add, and so do breaker states (each worker's is
one-hot, so the sum says how many workers have the route's circuit closed, half-open, open).
Routes are matched by (label, source) rather than position, so two workers that disagree about
the route list (a worker restarted onto a new config) still merge into something truthful. The
result is itself a snapshot, so merging is associative and can be done in any grouping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from propylon.stats.counters import NO_SPANS, SNAPSHOT_VERSION
from propylon.stats.histogram import LatencyHistogram

_ROUTE_COUNTERS = (
    "requests",
    "in_flight",
    "upstream_errors",
    "upstream_timeouts",
    "retries",
    "retries_refused",
    "bytes_in",
    "bytes_out",
)


def empty_snapshot() -> dict[str, Any]:
    """What zero workers report: the identity of ``merge_snapshots``."""
    return {
        "version": SNAPSHOT_VERSION,
        "workers_reporting": 0,
        "started_at": None,
        "uptime_seconds": 0.0,
        "requests": 0,
        "unrouted": {},
        "routes": [],
        "upstreams": {},
        "tracing": dict(NO_SPANS),
    }


def merge_snapshots(snapshots: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One snapshot covering every input; the inputs are left untouched."""
    merged = empty_snapshot()
    routes: dict[tuple[str, str], dict[str, Any]] = {}
    histograms: dict[tuple[str, str], LatencyHistogram] = {}
    for snap in snapshots:
        if snap.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {snap.get('version')!r} is not {SNAPSHOT_VERSION}")
        merged["workers_reporting"] += snap["workers_reporting"]
        started = snap["started_at"]
        if started is not None and (merged["started_at"] is None or started < merged["started_at"]):
            merged["started_at"] = started
        merged["uptime_seconds"] = max(merged["uptime_seconds"], snap["uptime_seconds"])
        merged["requests"] += snap["requests"]
        unrouted = merged["unrouted"]
        for status, n in snap["unrouted"].items():
            unrouted[status] = unrouted.get(status, 0) + n
        for route in snap["routes"]:
            key = (route["route"], route["source"])
            histogram = LatencyHistogram.from_dict(route["latency"])
            into = routes.get(key)
            if into is None:
                routes[key] = {
                    **route,
                    "responses": list(route["responses"]),
                    "rate_limit": _added(None, route.get("rate_limit")),
                    "circuit_breaker": _added(None, route.get("circuit_breaker")),
                }
                histograms[key] = histogram
                continue
            for name in _ROUTE_COUNTERS:
                into[name] += route[name]
            into["responses"] = [
                a + b for a, b in zip(into["responses"], route["responses"], strict=True)
            ]
            for name in ("rate_limit", "circuit_breaker"):
                into[name] = _added(into[name], route.get(name))
            histograms[key].merge(histogram)
        for host, up in snap["upstreams"].items():
            _merge_upstream(merged["upstreams"], host, up)
        spans = merged["tracing"]
        for name, n in snap.get("tracing", NO_SPANS).items():
            spans[name] = spans.get(name, 0) + n
        for name, state in snap.get("discovery", {}).items():
            _merge_name(merged.setdefault("discovery", {}), name, state)
    merged["unrouted"] = dict(sorted(merged["unrouted"].items()))
    merged["routes"] = [
        {**route, "latency": histograms[key].to_dict()} for key, route in routes.items()
    ]
    return merged


def _added(into: dict[str, Any] | None, more: dict[str, Any] | None) -> dict[str, Any] | None:
    """Counters nested in dicts (rate-limit decisions, breaker states and transitions) added
    key by key into a fresh dict; None (the route has no such stage) adds nothing."""
    if more is None:
        return None if into is None else into
    out: dict[str, Any] = {} if into is None else dict(into)
    for name, value in more.items():
        if isinstance(value, dict):
            out[name] = _added(out.get(name), value)
        else:
            out[name] = int(out.get(name, 0)) + int(value)
    return out


def _merge_upstream(into: dict[str, dict[str, Any]], host: str, up: dict[str, Any]) -> None:
    have = into.get(host)
    if have is None:
        into[host] = dict(up)
        return
    have["requests"] += up["requests"]
    have["errors"] += up["errors"]
    have["queue_full"] += up["queue_full"]
    have["queue_timeouts"] += up["queue_timeouts"]
    at = up["last_error_at"]
    if at is not None and (have["last_error_at"] is None or at > have["last_error_at"]):
        have["last_error"] = up["last_error"]
        have["last_error_at"] = at
    theirs = up.get("health")
    mine = have.get("health")
    if theirs is not None and mine is not None:
        # Each worker judges the host for itself: it is up only if every worker has it up.
        until = [u for u in (mine["ejected_until"], theirs["ejected_until"]) if u is not None]
        have["health"] = {
            "up": mine["up"] and theirs["up"],
            "ejected_until": max(until) if until else None,
            "checked_down": mine["checked_down"] or theirs["checked_down"],
            "consecutive_failures": max(
                mine["consecutive_failures"], theirs["consecutive_failures"]
            ),
            "last_cause": mine["last_cause"] or theirs["last_cause"],
        }


def _merge_name(into: dict[str, dict[str, Any]], name: str, state: dict[str, Any]) -> None:
    """A discovered name as the workers see it: the freshest set, failing if any worker's
    last resolution failed (each worker resolves for itself)."""
    have = into.get(name)
    if have is None:
        into[name] = dict(state)
        return
    theirs, mine = state["resolved_at"], have["resolved_at"]
    if theirs is not None and (mine is None or theirs > mine):
        have.update(addresses=state["addresses"], resolved_at=theirs, ttl=state["ttl"])
    have["failing"] = have["failing"] or state["failing"]
    have["last_error"] = have["last_error"] or state["last_error"]
