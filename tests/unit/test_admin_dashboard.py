"""The dashboard's numbers (rates and window percentiles from two merged snapshots, the
scrape history they come from, on a clock the test drives) and its page's promises: one
self-contained file, nothing fetched from elsewhere, scripts allowed only by their hash."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from propylon.admin.dashboard import MAX_AGE, SPACING, WINDOW, Dashboard, dashboard_view, page
from propylon.admin.workers import WorkerGroup
from propylon.stats import GatewayStats, merge_snapshots
from propylon.stats.counters import RateLimitDecisions

ROUTES = [("GET /a", "Routes[0]"), ("GET /b/{id}", "Routes[1]")]
HOSTS = ["127.0.0.1:9001"]


def traffic(stats: GatewayStats, n: int, seconds: float, status: int = 200, route: int = 0) -> None:
    for _ in range(n):
        stats.request_seen()
        stats.routes[route].begin()
        stats.routes[route].end(status, seconds, 0, 0)
        stats.upstreams[HOSTS[0]].request()


def snap(stats: GatewayStats) -> dict[str, Any]:
    return merge_snapshots([stats.snapshot()])


def test_without_a_baseline_every_rate_is_null() -> None:
    stats = GatewayStats(ROUTES, HOSTS)
    traffic(stats, 3, 0.001)
    view = dashboard_view(snap(stats), None, 0.0, workers=1)
    assert view["window_seconds"] is None
    assert view["totals"]["requests"] == 3 and view["totals"]["requests_per_second"] is None
    route = view["routes"][0]
    assert route["requests"] == 3 and route["requests_per_second"] is None
    assert route["latency_ms"] == {"p50": None, "p99": None} and route["error_rate"] is None
    assert view["upstreams"][0]["requests_per_second"] is None


def test_rates_percentiles_and_error_rate_cover_only_the_window() -> None:
    stats = GatewayStats(ROUTES, HOSTS)
    decisions = stats.routes[1].rate_limit = RateLimitDecisions()
    decisions.admitted = 10
    traffic(stats, 100, 0.001)  # before the window: fast
    then = snap(stats)
    traffic(stats, 45, 0.010)  # within it: slower, and some failures
    traffic(stats, 5, 0.200, status=502)
    decisions.admitted, decisions.refused = 14, 6
    view = dashboard_view(snap(stats), then, 5.0, workers=1)
    assert view["window_seconds"] == 5.0
    route = view["routes"][0]
    assert route["requests"] == 150 and route["requests_per_second"] == 10.0
    assert route["latency_ms"]["p50"] == pytest.approx(10.0, rel=0.05)
    assert route["latency_ms"]["p99"] == pytest.approx(200.0, rel=0.05)
    assert route["window_responses"] == {"1xx": 0, "2xx": 45, "3xx": 0, "4xx": 0, "5xx": 5}
    assert route["error_rate"] == 0.1
    assert route["responses"]["2xx"] == 145  # totals since start
    assert view["totals"]["requests_per_second"] == 10.0 and view["totals"]["error_rate"] == 0.1
    limited = view["routes"][1]["rate_limit"]
    assert (limited["admitted"], limited["refused"]) == (14, 6)
    assert limited["admitted_per_second"] == 0.8 and limited["refused_per_second"] == 1.2
    assert view["upstreams"][0]["requests_per_second"] == 10.0
    assert view["upstreams"][0]["status"] == "unknown"  # no health reader in this test


def test_a_counter_that_went_down_counts_as_no_traffic() -> None:
    # A worker that answered the last scrape and not this one (restarting, slow).
    one, two = GatewayStats(ROUTES, HOSTS), GatewayStats(ROUTES, HOSTS)
    traffic(one, 10, 0.001)
    traffic(two, 10, 0.001)
    then = merge_snapshots([one.snapshot(), two.snapshot()])
    view = dashboard_view(merge_snapshots([one.snapshot()]), then, 1.0, workers=2)
    route = view["routes"][0]
    assert route["requests_per_second"] == 0.0 and route["latency_ms"]["p50"] is None
    assert view["totals"]["requests_per_second"] == 0.0


def test_a_route_new_since_the_baseline_started_from_nothing() -> None:
    old = GatewayStats(ROUTES[:1], HOSTS)
    new = GatewayStats(ROUTES, HOSTS)
    traffic(new, 4, 0.002, route=1)
    view = dashboard_view(snap(new), snap(old), 2.0, workers=1)
    assert view["routes"][1]["requests_per_second"] == 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_baseline_is_the_newest_scrape_a_window_old_and_history_stays_small(
    tmp_path: Path,
) -> None:
    clock = Clock()
    board = Dashboard(WorkerGroup(str(tmp_path), 0), clock=clock)
    empty = merge_snapshots([])

    def scrape(at: float) -> float | None:
        """When the baseline this scrape is compared with was taken."""
        clock.now = at
        then, seconds = board.remember(at, {**empty, "requests": round(at * 10)})
        if then is None:
            return None
        taken: float = then["requests"] / 10
        assert seconds == pytest.approx(at - taken)
        return taken

    assert scrape(0.0) is None  # the first scrape has nothing to compare with
    assert scrape(1.0) == 0.0
    assert scrape(1.0 + SPACING / 2) == 0.0  # answered, not remembered
    assert len(board.history) == 2
    for t in range(2, 12):
        scrape(float(t))
    assert scrape(12.0) == 12.0 - WINDOW  # the newest one at least WINDOW old
    assert len(board.history) <= WINDOW / SPACING + 2
    assert scrape(12.0 + MAX_AGE + 1) is None  # too old to call a rate live


def test_the_page_is_self_contained_and_its_scripts_are_allowed_by_hash() -> None:
    body, policy = page()
    text = body.decode()
    # Offline: no address to load anything from, no external script, style or font.
    assert "://" not in text and not re.search(r"\b(src|href)=", text)
    assert "innerHTML" not in text and "eval(" not in text
    (script,) = re.findall(r"<script>(.*?)</script>", text, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
