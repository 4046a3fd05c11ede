"""Medians over rounds, ratios to nginx (and to propylon's own ``proxy`` scenario), and
verdicts against the targets."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.entries import GATEWAY, REFERENCE
from harness.measure import RunRecord
from harness.scenarios import PROXY, Scenario

PASS = "pass"
FAIL = "FAIL"
REPORT = "report"
BROKEN = "BROKEN"


@dataclass(frozen=True, slots=True)
class EntrySummary:
    runs: int
    """Usable runs (the median is over these)."""
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float | None
    p99_ms: float | None
    rss_mib: float
    proxy_cpu_pct: float | None
    upstream_cpu_pct: float | None
    client_cpu_pct: float | None
    cpus_busy_pct: str
    errors: int


@dataclass(frozen=True, slots=True)
class Verdict:
    scenario: str
    ratio: float | None
    p99_ratio: float | None
    scaling: float | None
    vs_proxy: float | None
    """Propylon's median rps here over its median in ``proxy``, same run (scenarios with
    ``min_vs_proxy`` only); None when either is missing."""
    target: str
    outcome: str
    reasons: tuple[str, ...]


def summarize(records: Sequence[RunRecord]) -> dict[str, dict[str, EntrySummary]]:
    """``{scenario: {entry: summary}}`` over the usable runs; a pair without any is absent."""
    grouped: dict[str, dict[str, list[RunRecord]]] = {}
    for record in records:
        if not record.problem:
            grouped.setdefault(record.scenario, {}).setdefault(record.entry, []).append(record)
    return {
        scenario: {entry: _summary(runs) for entry, runs in by_entry.items()}
        for scenario, by_entry in grouped.items()
    }


def _summary(runs: list[RunRecord]) -> EntrySummary:
    def median(get: Callable[[RunRecord], float | None]) -> float | None:
        values = [v for v in map(get, runs) if v is not None]
        return statistics.median(values) if values else None

    by_rps = sorted(runs, key=lambda r: r.rps)
    return EntrySummary(
        runs=len(runs),
        rps=statistics.median(r.rps for r in runs),
        rps_min=by_rps[0].rps,
        rps_max=by_rps[-1].rps,
        p50_ms=median(lambda r: r.p50_ms),
        p99_ms=median(lambda r: r.p99_ms),
        rss_mib=max(r.rss_mib for r in runs),
        proxy_cpu_pct=median(lambda r: r.proxy_cpu_pct),
        upstream_cpu_pct=median(lambda r: r.upstream_cpu_pct),
        client_cpu_pct=median(lambda r: r.client_cpu_pct),
        cpus_busy_pct=by_rps[len(by_rps) // 2].cpus_busy_pct,
        errors=sum(r.errors for r in runs),
    )


def judge(
    scenario: Scenario,
    summary: dict[str, dict[str, EntrySummary]],
    records: Sequence[RunRecord],
    cpus: int | None = None,
) -> Verdict:
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    target = _target_text(scenario, cpus)
    pair = summary.get(scenario.name, {})
    nginx, gateway = pair.get(REFERENCE), pair.get(GATEWAY)
    if nginx is None or gateway is None:
        return Verdict(
            scenario.name, None, None, None, None, target, BROKEN, _problems(scenario, records)
        )
    ratio = gateway.rps / nginx.rps if nginx.rps else None
    p99_ratio = _ratio(gateway.p99_ms, nginx.p99_ms)
    scaling = None
    one_worker = summary.get(PROXY, {}).get(GATEWAY)
    if scenario.min_scaling is not None and one_worker is not None and one_worker.rps:
        scaling = gateway.rps / one_worker.rps
    reasons = []
    if scenario.min_ratio is not None and (ratio is None or ratio < scenario.min_ratio):
        reasons.append(f"ratio {_num(ratio)} < {scenario.min_ratio:.2f}")
    if scenario.max_p99_ratio is not None and (
        p99_ratio is None or p99_ratio > scenario.max_p99_ratio
    ):
        reasons.append(f"p99 ratio {_num(p99_ratio)} > {scenario.max_p99_ratio:.1f}")
    if scenario.max_rss_mib is not None and gateway.rss_mib >= scenario.max_rss_mib:
        reasons.append(f"peak RSS {gateway.rss_mib:.1f} MiB >= {scenario.max_rss_mib:.0f}")
    judged = _has_target(scenario)
    if scenario.min_scaling is not None and cpus >= scenario.scaling_min_cpus:
        judged = True
        if scaling is None or scaling < scenario.min_scaling:
            reasons.append(f"scaling {_num(scaling)} < {scenario.min_scaling:.1f}")
    vs_proxy = None
    unjudged = []
    if scenario.min_vs_proxy is not None:
        if one_worker is None or not one_worker.rps:
            # Said in the verdict: a target that could not be judged is not a pass.
            unjudged.append(f"vs proxy not judged: no usable propylon run of {PROXY} in this run")
        else:
            vs_proxy = gateway.rps / one_worker.rps
            judged = True
            if vs_proxy < scenario.min_vs_proxy:
                reasons.append(f"vs proxy {vs_proxy:.2f} < {scenario.min_vs_proxy:.2f}")
    if reasons:
        outcome = FAIL
    elif judged and not unjudged:
        outcome = PASS
    else:
        outcome = REPORT
    return Verdict(
        scenario.name,
        ratio,
        p99_ratio,
        scaling,
        vs_proxy,
        target,
        outcome,
        (*reasons, *unjudged),
    )


def _problems(scenario: Scenario, records: Sequence[RunRecord]) -> tuple[str, ...]:
    """Each entry's first problem in this scenario, and how many runs had one."""
    failed: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.scenario == scenario.name and record.problem:
            failed.setdefault(record.entry, []).append(record)
    problems = []
    for entry, runs in sorted(failed.items()):
        more = f" (and {len(runs) - 1} more runs)" if len(runs) > 1 else ""
        problems.append(f"{entry}: {runs[0].problem}{more}")
    return tuple(problems)


def _has_target(scenario: Scenario) -> bool:
    limits = (scenario.min_ratio, scenario.max_p99_ratio, scenario.max_rss_mib)
    return any(limit is not None for limit in limits)


def _target_text(scenario: Scenario, cpus: int) -> str:
    parts = []
    if scenario.min_ratio is not None:
        parts.append(f">= {scenario.min_ratio:.2f}")
    if scenario.upload and scenario.min_ratio:
        parts[-1] += f" (time <= {1 / scenario.min_ratio:.0f}x)"
    if scenario.max_p99_ratio is not None:
        parts.append(f"p99 <= {scenario.max_p99_ratio:.1f}x")
    if scenario.max_rss_mib is not None:
        parts.append(f"RSS < {scenario.max_rss_mib:.0f} MiB")
    if scenario.min_scaling is not None:
        judged = (
            ""
            if cpus >= scenario.scaling_min_cpus
            else f", judged on >= {scenario.scaling_min_cpus} CPUs"
        )
        parts.append(f"{scenario.min_scaling:.1f}x one worker{judged}")
    if scenario.min_vs_proxy is not None:
        parts.append(f"vs proxy >= {scenario.min_vs_proxy:.2f}")
    return ", ".join(parts) or "report"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
