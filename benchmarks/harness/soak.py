"""Memory soak: one propylon worker idle, then minutes of load at 500 connections.

Targets (performance issue): idle RSS under 60 MiB, and growth under 10% over the load. The
growth is measured from the first sample under load, not from idle: the first seconds at 500
connections allocate their buffers once, which is not the leak the target is about.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from harness.entries import Entry
from harness.measure import PROXY_PORT, Settings
from harness.probe import wait_ready
from harness.processes import ProcessGroup, finish_client, start_client, wait_port_free
from harness.scenarios import PROFILE_PATH
from harness.wrk import LoadSpec, parse_wrk, wrk_argv

MAX_IDLE_MIB = 60.0
MAX_GROWTH_PCT = 10.0
IDLE_SETTLE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class SoakResult:
    problem: str
    idle_mib: float = 0.0
    samples_mib: tuple[tuple[float, float], ...] = ()
    """(seconds since the load started, RSS MiB)."""
    growth_pct: float | None = None
    rps: float = 0.0
    errors: int = 0

    @property
    def idle_ok(self) -> bool:
        return not self.problem and self.idle_mib < MAX_IDLE_MIB

    @property
    def growth_ok(self) -> bool:
        return not self.problem and self.growth_pct is not None and self.growth_pct < MAX_GROWTH_PCT

    @property
    def passed(self) -> bool:
        return self.idle_ok and self.growth_ok


def run_soak(
    entry: Entry,
    settings: Settings,
    env: Mapping[str, str],
    seconds: float,
    connections: int = 500,
    interval: float = 10.0,
) -> SoakResult:
    logs = settings.out / "logs"
    run_dir = settings.out / "run" / entry.name
    run_dir.mkdir(parents=True, exist_ok=True)
    command = entry.shell_command(1, run_dir)
    group = ProcessGroup(entry.name, command, settings.proxy_cpus, env, logs / "soak.proxy.log")
    try:
        ready = wait_ready(PROXY_PORT, PROFILE_PATH, group)
        if ready is None or ready.status != 200:
            return SoakResult("propylon did not answer 200; see logs/soak.proxy.log")
        time.sleep(IDLE_SETTLE_SECONDS)
        idle = group.memory_kib("VmRSS") / 1024
        spec = LoadSpec(
            url=f"http://127.0.0.1:{PROXY_PORT}{PROFILE_PATH}",
            seconds=seconds,
            connections=connections,
            threads=settings.threads,
            cpus=settings.client_cpus,
        )
        wrk = start_client(wrk_argv(spec))
        started = time.monotonic()
        samples = []
        next_sample = started + min(interval, seconds / 2)
        while wrk.poll() is None:
            time.sleep(0.2)
            now = time.monotonic()
            if now >= next_sample:
                samples.append((round(now - started, 1), group.memory_kib("VmRSS") / 1024))
                print(f"[soak] {now - started:5.0f} s  RSS {samples[-1][1]:.1f} MiB", flush=True)
                next_sample += interval
        raw = finish_client(wrk, timeout=60)
    finally:
        group.stop()
        wait_port_free(PROXY_PORT)
    (logs / "soak.load.txt").write_text(raw)
    report = parse_wrk(raw)
    errors = report.non_2xx + report.socket_errors
    growth = None
    if len(samples) >= 2 and samples[0][1]:
        growth = 100.0 * (samples[-1][1] - samples[0][1]) / samples[0][1]
    problem = "" if report.requests else "no request completed; see logs/soak.load.txt"
    return SoakResult(problem, idle, tuple(samples), growth, report.rps, errors)


def soak_markdown(result: SoakResult, seconds: float, connections: int = 500) -> str:
    if result.problem:
        return f"soak: BROKEN: {result.problem}"
    growth = "-" if result.growth_pct is None else f"{result.growth_pct:+.1f} %"
    series = ", ".join(f"{t:.0f}s {mib:.1f}" for t, mib in result.samples_mib)
    return "\n".join(
        [
            f"soak: one propylon worker, wrk -c{connections} for {seconds:.0f} s "
            f"({result.rps:.0f} rps, {result.errors} errors)",
            "",
            "| measure | value | target | pass/fail |",
            "|---|---:|---|---|",
            f"| idle RSS | {result.idle_mib:.1f} MiB | < {MAX_IDLE_MIB:.0f} MiB "
            f"| {'pass' if result.idle_ok else 'FAIL'} |",
            f"| RSS growth under load (first to last sample) | {growth} "
            f"| < {MAX_GROWTH_PCT:.0f} % | {'pass' if result.growth_ok else 'FAIL'} |",
            "",
            f"RSS MiB samples: {series}",
        ]
    )
