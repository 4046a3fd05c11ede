"""Counters and latency histograms behind ``GET /stats``, merged across workers."""

from propylon.stats.access import StatsGate
from propylon.stats.counters import GatewayStats, RouteStats, UpstreamStats
from propylon.stats.exchange import StatsExchange
from propylon.stats.histogram import LatencyHistogram
from propylon.stats.merge import merge_snapshots
from propylon.stats.report import render_report

__all__ = [
    "GatewayStats",
    "LatencyHistogram",
    "RouteStats",
    "StatsExchange",
    "StatsGate",
    "UpstreamStats",
    "merge_snapshots",
    "render_report",
]
