"""The markdown the harness prints and writes to summary.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.entries import GATEWAY, REFERENCE
from harness.measure import RunRecord
from harness.report import EntrySummary, Verdict
from harness.scenarios import PROXY, Scenario
from harness.spans import SPANS_PER_REQUEST, per_request

MAIN_HEADER = (
    "| scenario | nginx rps | propylon rps | ratio | vs proxy | target | nginx p99 ms "
    "| propylon p99 ms | p99 ratio | propylon peak RSS MiB | pass/fail |\n"
    "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"
)
DETAIL_HEADER = (
    "| scenario | entry | runs | rps (median) | rps min-max | p50 ms | p99 ms | peak RSS MiB "
    "| proxy CPU % | U CPU % | client CPU % | CPUs busy % | errors |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
)


def main_table(
    scenarios: Sequence[Scenario],
    summary: Mapping[str, Mapping[str, EntrySummary]],
    verdicts: Mapping[str, Verdict],
) -> str:
    lines = [MAIN_HEADER]
    for scenario in scenarios:
        pair = summary.get(scenario.name, {})
        nginx, gateway = pair.get(REFERENCE), pair.get(GATEWAY)
        nginx_p99 = nginx.p99_ms if nginx else None
        gateway_p99 = gateway.p99_ms if gateway else None
        verdict = verdicts[scenario.name]
        outcome = verdict.outcome
        if verdict.reasons:
            outcome += ": " + "; ".join(verdict.reasons)
        lines.append(
            f"| {scenario.name}: {scenario.title} | {_rps(nginx)} | {_rps(gateway)} "
            f"| {num(verdict.ratio)} | {num(verdict.vs_proxy)} | {verdict.target} "
            f"| {num(nginx_p99)} | {num(gateway_p99)} "
            f"| {num(verdict.p99_ratio)} | {num(gateway.rss_mib if gateway else None, 1)} "
            f"| {outcome} |"
        )
    return "\n".join(lines)


def detail_table(
    scenarios: Sequence[Scenario], summary: Mapping[str, Mapping[str, EntrySummary]]
) -> str:
    lines = [DETAIL_HEADER]
    for scenario in scenarios:
        for entry, s in summary.get(scenario.name, {}).items():
            lines.append(
                f"| {scenario.name} | {entry} | {s.runs} | {s.rps:.1f} "
                f"| {s.rps_min:.1f}-{s.rps_max:.1f} | {num(s.p50_ms)} | {num(s.p99_ms)} "
                f"| {num(s.rss_mib if s.proxy_cpu_pct is not None else None, 1)} "
                f"| {num(s.proxy_cpu_pct, 0)} | {num(s.upstream_cpu_pct, 0)} "
                f"| {num(s.client_cpu_pct, 0)} | {s.cpus_busy_pct} | {s.errors} |"
            )
    return "\n".join(lines)


def notes(
    scenarios: Sequence[Scenario],
    summary: Mapping[str, Mapping[str, EntrySummary]],
    verdicts: Mapping[str, Verdict],
    records: Sequence[RunRecord],
    upload_bytes: int,
    cpus: int,
) -> list[str]:
    lines = []
    for scenario in scenarios:
        pair = summary.get(scenario.name, {})
        if scenario.upload:
            times = ", ".join(
                f"{name} {1000.0 / s.rps:.1f} ms" for name, s in pair.items() if s.rps
            )
            lines.append(
                f"- upload: {upload_bytes / 2**20:g} MiB per POST, sequential on one keep-alive "
                f"connection; mean time per upload: {times or '-'}."
            )
        if scenario.min_scaling is not None:
            scaling = verdicts[scenario.name].scaling
            lines.append(
                f"- {scenario.name}: propylon with {scenario.workers} workers (unpinned) over "
                f"one pinned worker (scenario proxy) = {num(scaling)}x; this machine has {cpus} "
                f"CPU{'s' if cpus != 1 else ''}, and wrk plus U keep one of them busy, so "
                f"scaling is only judged with >= {scenario.scaling_min_cpus}."
            )
        gateway_runs = [r for r in records if r.scenario == scenario.name and r.entry == GATEWAY]
        if scenario.access_log and gateway_runs:
            lines.append(
                f"- {scenario.name}: access log lines vs wrk's requests (warm-up + "
                "measured; the harness's probe and checks and wrk's requests in flight "
                "at its end come on top): " + "; ".join(map(_lines_vs_requests, gateway_runs)) + "."
            )
        if scenario.otlp_export and gateway_runs:
            lines.append(
                f"- {scenario.name}: spans (expected {SPANS_PER_REQUEST} per request: "
                "the request and its upstream call; the gateway drops spans by design "
                "when its export queue is full): "
                + "; ".join(map(_span_account, gateway_runs))
                + "."
            )
    against_proxy = [s.name for s in scenarios if s.min_vs_proxy is not None]
    if against_proxy:
        lines.append(
            f"- vs proxy: propylon's median rps in the scenario over propylon's in {PROXY}, this "
            f"run ({', '.join(against_proxy)}: what the feature costs the gateway itself; only "
            f"propylon gets the feature, nginx runs as in {PROXY})."
        )
    problems = sorted(
        {f"{r.scenario}/{r.entry} round {r.round}: {r.problem}" for r in records if r.problem}
    )
    if problems:
        lines.append("- runs left out of the medians:")
        lines.extend(f"  - {problem}" for problem in problems)
    return lines


def _lines_vs_requests(r: RunRecord) -> str:
    if r.access_log_lines is None:
        return f"r{r.round} -"
    wrk = r.requests + r.warmup_requests
    extra = r.access_log_lines - wrk
    return f"r{r.round} {r.access_log_lines:,} lines / {wrk:,} requests ({extra:+,})"


def _span_account(r: RunRecord) -> str:
    requests = r.requests + r.warmup_requests
    return (
        f"r{r.round} {_count(r.spans_received)} received for {requests:,} requests "
        f"({num(per_request(r.spans_received, requests))} per request), gateway exported "
        f"{_count(r.spans_exported)}, dropped {_count(r.spans_dropped)}, receiver CPU "
        f"{num(r.receiver_cpu_pct, 0)}%"
    )


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rps(summary: EntrySummary | None) -> str:
    return (
        "-"
        if summary is None
        else f"{summary.rps:.0f}"
        if summary.rps >= 100
        else f"{summary.rps:.1f}"
    )
