"""``GET /metrics``: the workers' merged snapshot in Prometheus' text exposition format.

prometheus-client writes the format (escaping, ``# HELP``/``# TYPE``, ``_total`` and
``_bucket`` naming); the numbers are the same snapshot ``/stats`` reports, so the two agree.
Labels are the route's label (its template or name), its key path in the config, and the
upstream's ``host:port``: all fixed by the config, so no request can add a series.

Latency histograms: the data plane keeps one fine log histogram per route (8 buckets per
doubling, stats/histogram.py); each of the coarser Prometheus buckets below counts the fine
buckets whose middle is at or below its bound, so a sample within about 4.5 % of a bound may
fall on its other side, and ``_sum`` is estimated from the bucket middles (within 4.5 %).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from propylon.admin.workers import state_health
from propylon.stats.histogram import LOG_BUCKETS, LOWEST, RATIO
from propylon.stats.report import STATUS_CLASSES, UNROUTED_OUTCOMES

CONTENT_TYPE = CONTENT_TYPE_LATEST
BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds: a gateway's answers range from well under a millisecond to its timeouts."""
ROUTE_LABELS = ("route", "source")


def _middle(index: int, overflow: int, largest: float) -> float:
    if index == 0:
        return LOWEST / 2
    if index >= overflow:
        return largest
    return float(LOWEST * RATIO ** (index - 0.5))


def _histogram(latency: dict[str, Any]) -> tuple[list[tuple[str, float]], float, int]:
    counts: dict[int, int] = {int(i): int(n) for i, n in latency["buckets"]}
    largest = float(latency["max"])
    overflow = LOG_BUCKETS + 1
    total = sum(counts.values())
    estimated_sum = 0.0
    cumulative = [0] * len(BUCKETS)
    for index, n in counts.items():
        middle = min(_middle(index, overflow, largest), largest)
        estimated_sum += middle * n
        for position, bound in enumerate(BUCKETS):
            if middle <= bound:
                cumulative[position] += n
    buckets = [(repr(bound), float(n)) for bound, n in zip(BUCKETS, cumulative, strict=True)]
    buckets.append(("+Inf", float(total)))
    return buckets, estimated_sum, total


class SnapshotCollector(Collector):
    """One scrape's families, from one merged snapshot and the workers' own ones."""

    def __init__(
        self,
        merged: dict[str, Any],
        workers: list[dict[str, Any]],
        configured: int,
        reloads: dict[str, Any] | None = None,
    ) -> None:
        self.merged = merged
        self.workers = workers
        self.configured = configured
        self.reloads = reloads

    def collect(self) -> Iterator[Metric]:
        snap = self.merged
        yield GaugeMetricFamily(
            "propylon_workers", "Worker processes the gateway runs.", value=self.configured
        )
        yield GaugeMetricFamily(
            "propylon_workers_reporting",
            "Workers whose numbers this scrape includes (a slow or restarting one is left out).",
            value=snap["workers_reporting"],
        )
        if snap["started_at"] is not None:
            yield GaugeMetricFamily(
                "propylon_start_time_seconds",
                "Unix time the gateway's first reporting worker started.",
                value=snap["started_at"],
            )
        yield CounterMetricFamily(
            "propylon_requests",
            "Requests parsed, routed or not.",
            value=snap["requests"],
        )
        unrouted = CounterMetricFamily(
            "propylon_unrouted_responses",
            "Responses the gateway gave before or without a route, by outcome.",
            labels=["outcome", "class"],
        )
        by_outcome: dict[tuple[str, str], int] = {}
        for status_text, n in snap["unrouted"].items():
            status = int(status_text)
            outcome = UNROUTED_OUTCOMES.get(status, "other")
            klass = f"{status // 100}xx" if 100 <= status < 600 else "other"
            by_outcome[(outcome, klass)] = by_outcome.get((outcome, klass), 0) + n
        for (outcome, klass), n in sorted(by_outcome.items()):
            unrouted.add_metric([outcome, klass], n)
        yield unrouted
        yield from self._routes(snap["routes"])
        yield from self._upstreams(snap["upstreams"])
        yield from self._state()
        yield from self._reloads()

    def _reloads(self) -> Iterator[Metric]:
        record = self.reloads
        if record is None:
            return
        total = CounterMetricFamily(
            "propylon_config_reloads",
            "Config reloads (SIGHUP, POST /reload), by result.",
            labels=["result"],
        )
        total.add_metric(["success"], record["successes"])
        total.add_metric(["failure"], record["failures"])
        yield total
        yield GaugeMetricFamily(
            "propylon_config_last_reload_success",
            "Whether the last reload succeeded (1; also before any reload) or failed (0).",
            value=0 if record["result"] == "failure" else 1,
        )
        if record["last_success_at"] is not None:
            yield GaugeMetricFamily(
                "propylon_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful reload.",
                value=record["last_success_at"],
            )

    def _routes(self, routes: list[dict[str, Any]]) -> Iterator[Metric]:
        labels = list(ROUTE_LABELS)
        requests = CounterMetricFamily(
            "propylon_route_requests", "Requests a route received.", labels=labels
        )
        responses = CounterMetricFamily(
            "propylon_route_responses",
            "Responses on a route, by status class.",
            labels=[*labels, "class"],
        )
        in_flight = GaugeMetricFamily(
            "propylon_route_in_flight", "Requests a route is serving now.", labels=labels
        )
        failures = CounterMetricFamily(
            "propylon_route_upstream_failures",
            "Upstream faults on a route, by cause: timeout (504) or error (502, cut stream).",
            labels=[*labels, "cause"],
        )
        bytes_in = CounterMetricFamily(
            "propylon_route_received_bytes", "Request body bytes received.", labels=labels
        )
        bytes_out = CounterMetricFamily(
            "propylon_route_sent_bytes", "Response body bytes sent.", labels=labels
        )
        latency = HistogramMetricFamily(
            "propylon_route_duration_seconds",
            "Time from the request head to the end of the response.",
            labels=labels,
        )
        for route in routes:
            values = [route["route"], route["source"]]
            requests.add_metric(values, route["requests"])
            for klass, n in zip(STATUS_CLASSES, route["responses"], strict=True):
                responses.add_metric([*values, klass], n)
            in_flight.add_metric(values, route["in_flight"])
            failures.add_metric([*values, "error"], route["upstream_errors"])
            failures.add_metric([*values, "timeout"], route["upstream_timeouts"])
            bytes_in.add_metric(values, route["bytes_in"])
            bytes_out.add_metric(values, route["bytes_out"])
            buckets, estimated_sum, _count = _histogram(route["latency"])
            latency.add_metric(values, buckets, estimated_sum)
        yield from (requests, responses, in_flight, failures, bytes_in, bytes_out, latency)

    def _upstreams(self, upstreams: dict[str, dict[str, Any]]) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "propylon_upstream_requests", "Requests sent to an upstream host.", labels=["upstream"]
        )
        errors = CounterMetricFamily(
            "propylon_upstream_errors",
            "Faults of an upstream host (refused, reset, timeout, malformed, ...).",
            labels=["upstream"],
        )
        last = GaugeMetricFamily(
            "propylon_upstream_last_error_timestamp_seconds",
            "Unix time of the host's last fault; the cause label says which.",
            labels=["upstream", "cause"],
        )
        for host, up in sorted(upstreams.items()):
            requests.add_metric([host], up["requests"])
            errors.add_metric([host], up["errors"])
            if up["last_error_at"] is not None:
                last.add_metric([host, up["last_error"] or "other"], up["last_error_at"])
        yield from (requests, errors, last)

    def _state(self) -> Iterator[Metric]:
        health = state_health(self.workers)
        if not health:
            return
        down = GaugeMetricFamily(
            "propylon_state_store_down_workers",
            "Workers whose rate-limit store does not answer now (Redis down).",
            labels=["store"],
        )
        outages = CounterMetricFamily(
            "propylon_state_store_outages", "Outages of the rate-limit store.", labels=["store"]
        )
        failed = CounterMetricFamily(
            "propylon_state_store_failed_decisions",
            "Rate-limit decisions the store could not make (state.on_failure made them).",
            labels=["store"],
        )
        for kind, numbers in sorted(health.items()):
            down.add_metric([kind], numbers["down"])
            outages.add_metric([kind], numbers["outages"])
            failed.add_metric([kind], numbers["failed_decisions"])
        yield from (down, outages, failed)


def render_metrics(
    merged: dict[str, Any],
    workers: list[dict[str, Any]],
    configured: int,
    reloads: dict[str, Any] | None = None,
) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(merged, workers, configured, reloads))
    return generate_latest(registry)
