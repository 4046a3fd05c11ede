"""One measured run: start a proxy, check it answers right, load it, sample it, stop it."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import access_log, checks, spans
from harness.entries import BENCH_DIR, ROUTES_FILE, Entry
from harness.otlp_receiver import Receiver, ReceiverCounts
from harness.probe import wait_ready
from harness.processes import (
    CLOCK_TICKS,
    ProcessGroup,
    busy_ticks_per_cpu,
    run_client,
    wait_port_free,
)
from harness.scenarios import CLIENT_TRACEPARENT, PROFILE_PATH, Scenario
from harness.scrape import ADMIN_PORT, Scraper
from harness.tls import TLS_PORT, client_context, tls_fixtures
from harness.wrk import LoadSpec, parse_wrk, run_wrk

PROXY_PORT = 8000
UPSTREAM_PORT = 9001
UPLOAD_CLIENT = Path(__file__).resolve().parent / "upload_client.py"


@dataclass(frozen=True, slots=True)
class Settings:
    out: Path
    seconds: float
    warmup_seconds: float
    connections: int
    threads: int
    proxy_cpus: str
    """Empty: nothing is pinned."""
    client_cpus: str
    upload_bytes: int
    pause_seconds: float


@dataclass(frozen=True, slots=True)
class RunRecord:
    round: int
    scenario: str
    entry: str
    problem: str
    """Empty when the run is usable: answered right, no error responses."""
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    errors: int = 0
    rss_mib: float = 0.0
    proxy_cpu_pct: float | None = None
    upstream_cpu_pct: float | None = None
    client_cpu_pct: float | None = None
    cpus_busy_pct: str = ""
    warmup_requests: int = 0
    """wrk's count in the unrecorded warm-up (the access log and the spans cover it too)."""
    access_log_lines: int | None = None
    """``access-log`` only: lines in the file once the gateway stopped."""
    spans_received: int | None = None
    """``tracing-export`` only, from here on: what the receiver decoded, once the gateway
    stopped (its last batches included) ..."""
    spans_exported: int | None = None
    """... and the gateway's own counters (``/stats``), read after the load, exports done."""
    spans_dropped: int | None = None
    receiver_cpu_pct: float | None = None
    """The receiver's CPU during the measured load (it shares wrk's and U's CPU)."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    errors: int
    raw: str


def bench_redis_url() -> str:
    """Where the edge-redis scenario keeps its counters (the machine's Redis by default)."""
    return os.environ.get("PROPYLON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def measure(
    round_number: int,
    scenario: Scenario,
    entry: Entry,
    settings: Settings,
    fixtures: checks.Fixtures,
    env: Mapping[str, str],
    upstream: ProcessGroup,
) -> RunRecord:
    tag = f"{scenario.name}.{entry.name}.r{round_number}"
    logs = settings.out / "logs"
    group = None
    receiver: Receiver | None = None
    log_file: Path | None = None
    scraped = False
    port = UPSTREAM_PORT
    tls_dir = tls_fixtures(settings.out) if scenario.tls else None
    if scenario.tls and entry.tls_command is None:
        return RunRecord(round_number, scenario.name, entry.name, "no TLS listener to measure")
    warmup: LoadResult | None = None
    gateway_spans: spans.GatewaySpans | None = None
    final_counts: ReceiverCounts | None = None
    receiver_seconds: float | None = None
    try:
        if entry.command is not None:
            run_dir = settings.out / "run" / entry.name
            run_dir.mkdir(parents=True, exist_ok=True)
            cpus = settings.proxy_cpus if scenario.pinned else ""
            config = ROUTES_FILE
            if scenario.config is not None:
                # A native config names its key file itself: the run's key goes into a copy.
                template = (BENCH_DIR / scenario.config).read_text()
                config = run_dir / scenario.config
                config.write_text(
                    template.replace("{rs256_public_file}", env.get("PROPYLON_JWT_PUBLIC_KEY", ""))
                )
            if scenario.redis:
                env = {**env, "PROPYLON_REDIS_URL": bench_redis_url()}
            command = entry.shell_command(scenario.workers, run_dir, tls_dir, config)
            # The gateway's own features go to the gateway only: nginx (and whatever
            # --propylon-cmd starts instead) runs as in the plain scenario.
            if entry.feature_checks:
                scraped = scenario.admin_scraped
                if scraped:
                    command += f" --admin 127.0.0.1:{ADMIN_PORT}"
                if scenario.access_log:
                    log_file = run_dir / access_log.FILE_NAME
                    log_file.unlink(missing_ok=True)  # a fresh count for every run
                    command += f" --access-log {shlex.quote(str(log_file))}"
                if scenario.otlp_export:
                    started = Receiver.start(
                        run_dir, settings.client_cpus, env, logs / f"{tag}.otlp.log"
                    )
                    if isinstance(started, str):
                        return RunRecord(round_number, scenario.name, entry.name, started)
                    receiver = started
                    command += (
                        f" --otlp-endpoint {shlex.quote(receiver.traces_url)} --otlp-sample-ratio 1"
                    )
            group = ProcessGroup(entry.name, command, cpus, env, logs / f"{tag}.proxy.log")
            port = PROXY_PORT
        ready = wait_ready(port, PROFILE_PATH, group)
        if ready is None or ready.status != 200:
            got = "no answer" if ready is None else f"status {ready.status}"
            return RunRecord(
                round_number,
                scenario.name,
                entry.name,
                f"did not answer 200 ({got}); see logs/{tag}.proxy.log",
            )
        problem = checks.check_answers(port, scenario, entry, fixtures)
        if not problem and tls_dir is not None:
            port = TLS_PORT
            problem = checks.check_tls_answer(port, scenario, fixtures, client_context(tls_dir))
        if not problem and log_file is not None and not log_file.exists():
            problem = f"no {log_file.name} after the first requests: the access log is not on"
        if problem:
            return RunRecord(round_number, scenario.name, entry.name, problem)
        if settings.warmup_seconds > 0:
            warmup = _load(port, scenario, settings, fixtures, settings.warmup_seconds)
        cpu_before = busy_ticks_per_cpu()
        proxy_before = sum(group.cpu_ticks()) if group else 0
        upstream_before = sum(upstream.cpu_ticks())
        receiver_before = receiver.cpu_seconds() if receiver else 0.0
        client_before = _children_cpu_seconds()
        started_at = time.monotonic()
        if scraped:
            with Scraper() as scraper:
                result = _load(port, scenario, settings, fixtures, settings.seconds)
            (logs / f"{tag}.scrapes.txt").write_text(scraper.summary() + "\n")
            print(f"[{tag}] admin scrapes: {scraper.summary()}", flush=True)
        else:
            result = _load(port, scenario, settings, fixtures, settings.seconds)
        wall = time.monotonic() - started_at
        proxy_ticks = sum(group.cpu_ticks()) - proxy_before if group else 0
        upstream_ticks = sum(upstream.cpu_ticks()) - upstream_before
        if receiver is not None:
            receiver_seconds = receiver.cpu_seconds() - receiver_before
        client_seconds = _children_cpu_seconds() - client_before
        cpu_after = busy_ticks_per_cpu()
        rss_kib = group.memory_kib("VmHWM") if group else 0
        if receiver is not None:
            # Before the gateway stops: /stats is on its port, and its counters are final
            # for this load once the exporter has sent what was queued.
            spans.wait_until_quiet(receiver)
            gateway_spans = spans.gateway_spans(PROXY_PORT)
    finally:
        if group is not None:
            group.stop()
            if not wait_port_free(PROXY_PORT):
                print(f"[{tag}] port {PROXY_PORT} still busy after stop", flush=True)
        if receiver is not None:
            # After the gateway: a stopping gateway sends what it still holds.
            final_counts = receiver.counts()
            receiver.stop()
    (logs / f"{tag}.load.txt").write_text(result.raw)
    busy = []
    for cpu in sorted(cpu_after):
        (b0, t0), (b1, t1) = cpu_before.get(cpu, (0, 0)), cpu_after[cpu]
        busy.append(f"{100.0 * (b1 - b0) / max(1, t1 - t0):.0f}")
    problem = ""
    if result.requests == 0:
        problem = f"no request completed; see logs/{tag}.load.txt"
    elif result.errors:
        problem = f"{result.errors} failed requests; see logs/{tag}.load.txt"
    record = RunRecord(
        round=round_number,
        scenario=scenario.name,
        entry=entry.name,
        problem=problem,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        requests=result.requests,
        errors=result.errors,
        rss_mib=round(rss_kib / 1024, 1),
        proxy_cpu_pct=round(100.0 * proxy_ticks / CLOCK_TICKS / wall, 1) if group else None,
        upstream_cpu_pct=round(100.0 * upstream_ticks / CLOCK_TICKS / wall, 1),
        client_cpu_pct=round(100.0 * client_seconds / wall, 1),
        cpus_busy_pct="/".join(busy),
        warmup_requests=warmup.requests if warmup else 0,
    )
    if log_file is not None:
        record = _with_access_log(record, log_file, 2 if warmup else 1, settings.connections)
    if receiver is not None:
        record = _with_spans(record, gateway_spans, final_counts, receiver_seconds, wall, tag)
    time.sleep(settings.pause_seconds)
    return record


def _with_access_log(
    record: RunRecord, log_file: Path, wrk_runs: int, connections: int
) -> RunRecord:
    count = access_log.account(
        log_file, record.requests + record.warmup_requests, wrk_runs, connections
    )
    return dataclasses.replace(
        record, access_log_lines=count.lines, problem=record.problem or count.problem
    )


def _with_spans(
    record: RunRecord,
    gateway: spans.GatewaySpans | None,
    received: ReceiverCounts | None,
    receiver_seconds: float | None,
    wall: float,
    tag: str,
) -> RunRecord:
    problem = record.problem
    if received is None:
        problem = problem or f"the OTLP receiver did not answer at the end; see logs/{tag}.otlp.log"
    elif received.spans == 0:
        problem = problem or f"no span reached the OTLP receiver; see logs/{tag}.proxy.log"
    elif received.rejected:
        problem = problem or f"the OTLP receiver could not decode {received.rejected} exports"
    if gateway is None:
        problem = problem or "GET /stats gave no tracing counters after the run"
    return dataclasses.replace(
        record,
        problem=problem,
        spans_received=received.spans if received else None,
        spans_exported=gateway.exported if gateway else None,
        spans_dropped=gateway.dropped if gateway else None,
        receiver_cpu_pct=(
            round(100.0 * receiver_seconds / wall, 1) if receiver_seconds is not None else None
        ),
    )


def _load(
    port: int, scenario: Scenario, settings: Settings, fixtures: checks.Fixtures, seconds: float
) -> LoadResult:
    if scenario.upload:
        return _upload_load(port, scenario, settings, seconds)
    tokens_file = fixtures.rotation_files.get(scenario.algorithm) if scenario.rotate else None
    headers: tuple[str, ...] = ()
    if scenario.bearer and not scenario.rotate:
        headers = (f"Authorization: Bearer {fixtures.tokens[scenario.algorithm]}",)
    if scenario.origin is not None:
        headers = (*headers, f"Origin: {scenario.origin}")
    if scenario.traceparent:
        headers = (*headers, f"traceparent: {CLIENT_TRACEPARENT}")
    spec = LoadSpec(
        url=f"{'https' if scenario.tls else 'http'}://127.0.0.1:{port}{scenario.path}",
        seconds=seconds,
        connections=settings.connections,
        threads=settings.threads,
        cpus=settings.client_cpus,
        headers=headers,
        tokens_file=tokens_file,
    )
    raw = run_wrk(spec)
    report = parse_wrk(raw)
    return LoadResult(
        report.rps,
        report.p50_ms,
        report.p99_ms,
        report.requests,
        report.non_2xx + report.socket_errors,
        raw,
    )


def _upload_load(port: int, scenario: Scenario, settings: Settings, seconds: float) -> LoadResult:
    argv = [
        sys.executable,
        str(UPLOAD_CLIENT),
        "--port",
        str(port),
        "--path",
        scenario.path,
        "--bytes",
        str(settings.upload_bytes),
        "--seconds",
        str(seconds),
    ]
    if settings.client_cpus:
        argv = ["taskset", "-c", settings.client_cpus, *argv]
    raw = run_client(argv, timeout=seconds + 120)
    try:
        report = json.loads(raw.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return LoadResult(0.0, None, None, 0, 1, raw)
    mean = report["mean_s"]
    return LoadResult(
        rps=1.0 / mean if mean else 0.0,
        p50_ms=report["p50_s"] * 1000.0 if report["p50_s"] is not None else None,
        p99_ms=report["p99_s"] * 1000.0 if report["p99_s"] is not None else None,
        requests=report["count"],
        errors=report["failures"],
        raw=raw,
    )


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
