"""The counters the data plane bumps on every request, and one worker's snapshot of them.

Each worker is one single-threaded event loop, so counters are plain attributes on
``__slots__`` objects: no locks, and nothing is allocated per request. Everything is built at
start-up (one ``RouteStats`` per route, one ``UpstreamStats`` per downstream host); the hot path
only increments. ``snapshot`` turns the counters into plain JSON data that
``merge_snapshots`` can add across workers.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from propylon.stats.histogram import EDGES, LatencyHistogram

SNAPSHOT_VERSION = 1

NO_SPANS = {"spans_exported": 0, "spans_dropped": 0}
"""The span exporter's counters in a snapshot: sampled spans the collector accepted, and
spans lost (the queue was full, or the collector failed or did not answer in time)."""

UPSTREAM_ERROR_KINDS = frozenset(
    {"refused", "unreachable", "reset", "timeout", "malformed", "truncated", "closed", "tls", "dns"}
)
"""What ``last_error`` may say. Anything else is shown as "other", so an exception message or
an address can never reach the report through a careless caller."""


RATE_LIMIT_DECISIONS = ("admitted", "refused", "unidentified", "unavailable")
"""What a route's rate limiter decided: let through (also when the store could not decide and
``state.on_failure`` is ``open``), refused over the limit, refused for want of the Ocelot
client id header, refused because the store could not decide (``on_failure: closed``)."""

BREAKER_STATES = ("closed", "half_open", "open")
"""A circuit breaker's states, least open first (the policy's own names)."""


class RateLimitDecisions:
    """A route's rate-limit decisions, counted by its limiter (one increment per decision)."""

    __slots__ = ("admitted", "refused", "unavailable", "unidentified")

    def __init__(self) -> None:
        self.admitted = 0
        self.refused = 0
        self.unidentified = 0
        self.unavailable = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "admitted": self.admitted,
            "refused": self.refused,
            "unidentified": self.unidentified,
            "unavailable": self.unavailable,
        }


class RouteStats:
    __slots__ = (
        "breaker",
        "bytes_in",
        "bytes_out",
        "in_flight",
        "label",
        "latency",
        "rate_limit",
        "requests",
        "responses",
        "retries",
        "retries_refused",
        "source",
        "upstream_errors",
        "upstream_timeouts",
    )

    def __init__(self, label: str, source: str = "") -> None:
        self.label = label
        self.source = source
        self.requests = 0
        self.in_flight = 0
        self.responses = [0, 0, 0, 0, 0]
        """Responses by status class: index 0 is 1xx ... index 4 is 5xx."""
        self.upstream_errors = 0
        self.upstream_timeouts = 0
        self.retries = 0
        """Tries sent again after a failed one."""
        self.retries_refused = 0
        """Retries the route's retry budget refused."""
        self.bytes_in = 0
        self.bytes_out = 0
        self.latency = LatencyHistogram()
        self.rate_limit: RateLimitDecisions | None = None
        """The route's limiter's decisions (set when the route has a rate limit)."""
        self.breaker: Callable[[], dict[str, Any]] | None = None
        """Where the route's circuit breaker is read for the snapshot: its state one-hot
        over ``BREAKER_STATES`` (``{"closed": 1, "half_open": 0, "open": 0}``, so that
        workers add up) under ``workers``, and its ``transitions`` by state entered. Set by
        the gateway when the route has a breaker; None otherwise."""

    def begin(self) -> None:
        self.requests += 1
        self.in_flight += 1

    def end(self, status: int, seconds: float, bytes_in: int, bytes_out: int) -> None:
        self.in_flight -= 1
        # An exchange that ends before any status (0) counts as in and done, but as no class.
        if 100 <= status < 600:
            self.responses[status // 100 - 1] += 1
        # LatencyHistogram.record, inlined: a method call is a tenth of this function's cost.
        latency = self.latency
        latency.counts[bisect_right(EDGES, seconds)] += 1
        if seconds > latency.max:
            latency.max = seconds
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out

    def upstream_error(self) -> None:
        self.upstream_errors += 1

    def upstream_timeout(self) -> None:
        self.upstream_timeouts += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "route": self.label,
            "source": self.source,
            "requests": self.requests,
            "in_flight": self.in_flight,
            "responses": list(self.responses),
            "upstream_errors": self.upstream_errors,
            "upstream_timeouts": self.upstream_timeouts,
            "retries": self.retries,
            "retries_refused": self.retries_refused,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "latency": self.latency.to_dict(),
            "rate_limit": None if self.rate_limit is None else self.rate_limit.snapshot(),
            "circuit_breaker": None if self.breaker is None else self.breaker(),
        }


class UpstreamStats:
    __slots__ = (
        "errors",
        "health",
        "last_error",
        "last_error_at",
        "queue_full",
        "queue_timeouts",
        "requests",
        "wall_clock",
    )

    def __init__(self, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.requests = 0
        self.errors = 0
        self.queue_full = 0
        """Requests refused at once: every connection in use and the queue full."""
        self.queue_timeouts = 0
        """Requests that waited ``upstream_queue_timeout`` in the queue for nothing."""
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        """Unix time of the last error."""
        self.wall_clock = wall_clock
        self.health: Callable[[], dict[str, Any]] | None = None
        """Where the host's health state is read for the snapshot (set by the gateway,
        which owns it; stats never import the upstream layer)."""

    def request(self) -> None:
        self.requests += 1

    def error(self, kind: str) -> None:
        self.errors += 1
        self.last_error = kind if kind in UPSTREAM_ERROR_KINDS else "other"
        self.last_error_at = self.wall_clock()

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "requests": self.requests,
            "errors": self.errors,
            "queue_full": self.queue_full,
            "queue_timeouts": self.queue_timeouts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }
        if self.health is not None:
            snap["health"] = self.health()
        return snap


class GatewayStats:
    """One worker's counters.

    ``route_labels`` holds a ``(label, source)`` pair per route, in config order (a bare label
    is accepted too); ``routes[i]`` belongs to the i-th route of the config.
    """

    __slots__ = (
        "_unrouted",
        "clock",
        "discovery",
        "requests",
        "routes",
        "spans",
        "started",
        "started_at",
        "upstreams",
    )

    def __init__(
        self,
        route_labels: Sequence[tuple[str, str] | str],
        upstream_hosts: Sequence[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.routes = [
            RouteStats(entry) if isinstance(entry, str) else RouteStats(*entry)
            for entry in route_labels
        ]
        self.upstreams = {host: UpstreamStats(wall_clock=wall_clock) for host in upstream_hosts}
        self.requests = 0
        """Every request the worker parsed, routed or not."""
        self._unrouted: dict[int, int] = {}
        self.clock = clock
        self.started = clock()
        self.started_at = wall_clock()
        self.spans: Callable[[], dict[str, int]] | None = None
        """Where the span exporter's counters are read (set by the gateway when it exports
        spans; stats never import the tracing layer's exporter)."""
        self.discovery: Callable[[], dict[str, Any]] | None = None
        """Where the discovered names' state is read (set by the gateway when it has some)."""

    def request_seen(self) -> None:
        self.requests += 1

    def unrouted(self, status: int) -> None:
        """A response the gateway gave without a route: 404, 405, 400, 413, a refused /stats."""
        self._unrouted[status] = self._unrouted.get(status, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "workers_reporting": 1,
            "started_at": self.started_at,
            "uptime_seconds": max(0.0, self.clock() - self.started),
            "requests": self.requests,
            "unrouted": {str(status): n for status, n in sorted(self._unrouted.items())},
            "routes": [route.snapshot() for route in self.routes],
            "upstreams": {host: up.snapshot() for host, up in self.upstreams.items()},
            "tracing": self.spans() if self.spans is not None else dict(NO_SPANS),
            **({"discovery": self.discovery()} if self.discovery is not None else {}),
        }
