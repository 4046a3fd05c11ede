"""``GET /`` and ``GET /dashboard.json``: the operations dashboard.

The page (``dashboard.html``, shipped as package data) is one static file with its CSS and
JavaScript inline: no build step, nothing fetched from anywhere but this listener, so it
works offline. It holds no data and no secret, so it is served without the admin token;
the numbers come from ``GET /dashboard.json``, which the token guards like every other
endpoint. The page takes the token once (typed into it, or from the ``#token=`` fragment of
its address, which browsers never send to a server) and keeps it in the tab's session
storage; it shows every value as text (``textContent``), never as HTML.

Rates and percentiles are computed here, from the difference between this scrape's merged
snapshot and the newest kept one at least ``WINDOW`` seconds old (the oldest kept, while
none is that old yet; scrapes are remembered at most every ``SPACING`` seconds, whoever
asked), so every viewer sees the same numbers and a test can check them without a browser.
A counter that went down (a worker restarted, or did not answer this time) counts as no
change rather than as negative traffic.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections import deque
from collections.abc import Callable
from importlib import resources
from typing import Any

from propylon.admin.workers import WorkerGroup, state_health
from propylon.stats.histogram import LatencyHistogram
from propylon.stats.merge import merge_snapshots
from propylon.stats.report import (
    STATUS_CLASSES,
    iso_time,
    render_report,
    route_report,
    upstream_report,
)

WINDOW = 5.0
"""Seconds of traffic the rates and percentiles describe (at least; longer when the page
polls less often than this, and ``window_seconds`` says how long)."""
SPACING = 0.5
"""Scrapes closer together than this are answered but not remembered: however many pages
poll, the history stays a dozen snapshots."""
MAX_AGE = 60.0
"""A baseline older than this is too old to call the rate "live": rates read null."""

LastReload = Callable[[], dict[str, Any] | None]


def _no_reload() -> dict[str, Any] | None:
    return None


def page() -> tuple[bytes, str]:
    """The page and its Content-Security-Policy: scripts and styles only as they are in the
    file (by hash), fetches only to this listener, no frames, forms or base changes."""
    body = resources.files("propylon.admin").joinpath("dashboard.html").read_bytes()
    text = body.decode("utf-8")

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL)
        digests = (base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in found)
        return " ".join(f"'sha256-{d}'" for d in digests)

    policy = (
        "default-src 'none'; "
        f"script-src {hashes('script')}; style-src {hashes('style')}; "
        "connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return body, policy


def _gain(now: int, then: int) -> int:
    return now - then if now >= then else 0


def _per_second(count: int, seconds: float) -> float:
    return round(count / seconds, 3)


def _window_latency(now: dict[str, Any], then: dict[str, Any]) -> dict[str, float | None]:
    """p50/p99 (ms) of the requests that ended within the window (null: none did)."""
    current = LatencyHistogram.from_dict(now)
    before = LatencyHistogram.from_dict(then)
    current.counts = [_gain(a, b) for a, b in zip(current.counts, before.counts, strict=True)]
    out: dict[str, float | None] = {}
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        seconds = current.percentile(q)
        out[name] = None if seconds is None else round(seconds * 1000.0, 3)
    return out


def _route(now: dict[str, Any], then: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    report = route_report(now)
    row: dict[str, Any] = {
        "route": now["route"],
        "source": now["source"],
        "requests": now["requests"],
        "requests_per_second": None,
        "in_flight": now["in_flight"],
        "latency_ms": {"p50": None, "p99": None},
        "window_responses": None,
        "error_rate": None,
        "responses": report["responses"],
        "upstream_errors": now["upstream_errors"],
        "upstream_timeouts": now["upstream_timeouts"],
        "rate_limit": report["rate_limit"],
        "circuit_breaker": report["circuit_breaker"],
    }
    if then is None:
        if row["rate_limit"] is not None:
            row["rate_limit"].update(admitted_per_second=None, refused_per_second=None)
        return row
    classes = [_gain(a, b) for a, b in zip(now["responses"], then["responses"], strict=True)]
    answered = sum(classes)
    row["requests_per_second"] = _per_second(_gain(now["requests"], then["requests"]), seconds)
    row["latency_ms"] = _window_latency(now["latency"], then["latency"])
    row["window_responses"] = dict(zip(STATUS_CLASSES, classes, strict=True))
    row["error_rate"] = round(classes[-1] / answered, 4) if answered else None
    decisions = row["rate_limit"]
    if decisions is not None:
        before = then.get("rate_limit") or {}
        gained = {k: _gain(int(v), int(before.get(k, 0))) for k, v in decisions.items()}
        decisions["admitted_per_second"] = _per_second(gained["admitted"], seconds)
        decisions["refused_per_second"] = _per_second(
            gained["refused"] + gained["unidentified"] + gained["unavailable"], seconds
        )
    return row


def _upstream(
    host: str, now: dict[str, Any], then: dict[str, Any] | None, seconds: float
) -> dict[str, Any]:
    report = upstream_report(now)
    health = report.get("health")
    if health is None:
        status = "unknown"
    elif health["up"]:
        status = "up"
    elif health["checked_down"]:
        status = "down"
    else:
        status = "ejected"
    row: dict[str, Any] = {
        "upstream": host,
        "status": status,
        "health": health,
        "requests": now["requests"],
        "errors": now["errors"],
        "requests_per_second": None,
        "errors_per_second": None,
        "last_error": report["last_error"],
        "last_error_at": report["last_error_at"],
    }
    if then is not None:
        row["requests_per_second"] = _per_second(_gain(now["requests"], then["requests"]), seconds)
        row["errors_per_second"] = _per_second(_gain(now["errors"], then["errors"]), seconds)
    return row


def _zero_route(route: dict[str, Any]) -> dict[str, Any]:
    """What a route that appeared since the baseline (a reload) had then: nothing."""
    return {
        **route,
        "requests": 0,
        "responses": [0] * len(STATUS_CLASSES),
        "latency": LatencyHistogram().to_dict(),
        "rate_limit": None,
    }


_ZERO_UPSTREAM: dict[str, Any] = {"requests": 0, "errors": 0}


def dashboard_view(
    now: dict[str, Any], then: dict[str, Any] | None, seconds: float, *, workers: int
) -> dict[str, Any]:
    """The numbers of ``GET /dashboard.json``: ``now`` is this scrape's merged snapshot and
    ``then`` the one ``seconds`` earlier (None: no baseline yet, so every rate and window
    percentile is null)."""
    if then is not None and seconds <= 0:
        then = None
    report = render_report(now, workers=workers)
    old_routes = {(r["route"], r["source"]): r for r in then["routes"]} if then else {}
    routes = [
        _route(
            r,
            old_routes.get((r["route"], r["source"]), _zero_route(r)) if then else None,
            seconds,
        )
        for r in now["routes"]
    ]
    upstreams = [
        _upstream(host, up, then["upstreams"].get(host, _ZERO_UPSTREAM) if then else None, seconds)
        for host, up in sorted(now["upstreams"].items())
    ]
    totals: dict[str, Any] = {
        "requests": now["requests"],
        "requests_per_second": None,
        "in_flight": report["totals"]["in_flight"],
        "error_rate": None,
        "responses": report["totals"]["responses"],
        "unrouted": report["totals"]["unrouted"],
    }
    if then is not None:
        totals["requests_per_second"] = _per_second(
            _gain(now["requests"], then["requests"]), seconds
        )
        windows = [r["window_responses"] for r in routes]
        answered = sum(sum(w.values()) for w in windows)
        if answered:
            totals["error_rate"] = round(sum(w["5xx"] for w in windows) / answered, 4)
    return {
        "window_seconds": round(seconds, 3) if then is not None else None,
        "workers": workers,
        "workers_reporting": now["workers_reporting"],
        "uptime_seconds": report["uptime_seconds"],
        "totals": totals,
        "routes": routes,
        "upstreams": upstreams,
    }


class Dashboard:
    """The admin process's one dashboard: the scrape history that rates are computed from."""

    def __init__(
        self,
        group: WorkerGroup,
        *,
        last_reload: LastReload = _no_reload,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.group = group
        self.last_reload = last_reload
        """The last reload's result (``{"at", "ok", "error", ...}``), None before the first;
        hot reload (issue #14 item 2) supplies it."""
        self.clock = clock
        self.wall_clock = wall_clock
        self.history: deque[tuple[float, dict[str, Any]]] = deque()
        self.body, self.policy = page()

    def remember(self, now: float, merged: dict[str, Any]) -> tuple[dict[str, Any] | None, float]:
        """Keep ``merged`` (taken at ``now``) and return the baseline to compare it with:
        the newest kept scrape at least ``WINDOW`` old, else the oldest one (None: none)."""
        history = self.history
        while history and now - history[0][0] > MAX_AGE:
            history.popleft()
        while len(history) >= 2 and now - history[1][0] >= WINDOW:
            history.popleft()
        baseline = history[0] if history else None
        if not history or now - history[-1][0] >= SPACING:
            history.append((now, merged))
        if baseline is None or now - baseline[0] <= 0:
            return None, 0.0
        return baseline[1], now - baseline[0]

    async def view(self) -> dict[str, Any]:
        snapshots = await self.group.snapshots()
        merged = merge_snapshots(snapshots)
        then, seconds = self.remember(self.clock(), merged)
        view = dashboard_view(merged, then, seconds, workers=self.group.workers)
        readiness = self.group.readiness()
        return {
            "generated_at": iso_time(self.wall_clock()),
            "ready": readiness.ready,
            "draining": readiness.draining,
            "reason": readiness.reason,
            "last_reload": self.last_reload(),
            "state_stores": state_health(snapshots),
            **view,
        }
