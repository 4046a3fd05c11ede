"""propylon against nginx, in one run: interleaved rounds, medians, ratios, one table.

    .venv/bin/python benchmarks/bench.py            # every scenario, 3 rounds of 10 s
    .venv/bin/python benchmarks/bench.py --quick    # 2 s, 1 round: does the harness work?
    .venv/bin/python benchmarks/bench.py --scenarios soak   # 5 minutes at 500 connections

U (nginx serving static answers) listens on 127.0.0.1:9001, pinned with wrk to CPU 1; each
proxy under test listens on 127.0.0.1:8000, pinned to CPU 0, and is started afresh for every
run. Per round, every scenario runs every entry (nginx, propylon, then the --with extras), the
entry order reversed on even rounds. Before a run is measured the proxy must answer what U
answers (and propylon must really authenticate). See benchmarks/README.md for the method.

Exit status: 0 done (every target met, or --quick); 1 a target was missed; 2 the harness or a
proxy broke (a scenario without a usable run, a bad option, a busy port); 3 nginx or wrk is
missing (benchmarks/ensure-tools installs them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from types import FrameType

from harness import scenarios as catalogue
from harness.checks import Fixtures
from harness.entries import GATEWAY, Entry, build_entries
from harness.measure import PROXY_PORT, UPSTREAM_PORT, RunRecord, Settings, bench_redis_url, measure
from harness.otlp_receiver import proto_available
from harness.processes import port_in_use, stop_all
from harness.report import BROKEN, FAIL, judge, summarize
from harness.scenarios import Scenario
from harness.soak import run_soak, soak_markdown
from harness.tables import detail_table, main_table, notes
from harness.tokens import SigningKeys, make_keys, make_token, write_rotation
from harness.upstream import start_upstream, upstream_answers

EXIT_OK, EXIT_TARGET_MISSED, EXIT_BROKEN, EXIT_NO_TOOLS = 0, 1, 2, 3
SBIN_DIRS = ("/usr/sbin", "/sbin")
MIB = 1024 * 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_scenarios = ",".join(s.name for s in catalogue.SCENARIOS)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 s, 1 round, no warm-up, small uploads and token files",
    )
    ap.add_argument(
        "--scenarios",
        default=default_scenarios,
        help=f"comma-separated (default {default_scenarios}; also: soak)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of unrecorded load first")
    ap.add_argument("--connections", type=int, default=64, help="wrk -c")
    ap.add_argument("--threads", type=int, default=1, help="wrk -t")
    ap.add_argument("--proxy-cpus", default="0", help="taskset list for the proxy under test")
    ap.add_argument("--client-cpus", default="1", help="taskset list for wrk and U")
    ap.add_argument("--no-pin", action="store_true", help="pin nothing")
    ap.add_argument(
        "--tokens", type=int, default=10_000, help="distinct tokens in the rotation scenarios"
    )
    ap.add_argument("--upload-mib", type=float, default=10.0, help="size of one upload")
    ap.add_argument("--soak-seconds", type=float, default=300.0)
    ap.add_argument(
        "--with",
        dest="extras",
        default="",
        help="extra entries, comma-separated: direct (U itself), haproxy",
    )
    ap.add_argument(
        "--propylon-cmd",
        default=None,
        help="start something else as the 'propylon' entry (placeholders: see "
        "harness/entries.py); skips the authentication checks",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: a new one under the temp dir)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 2.0, 0.0
        args.tokens, args.upload_mib, args.soak_seconds = 200, 1.0, min(args.soak_seconds, 10)
    if args.rounds < 1 or args.duration < 1 or args.tokens < 1 or args.upload_mib <= 0:
        ap.error("--rounds, --duration, --tokens and --upload-mib must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        scenarios = catalogue.select(args.scenarios)
        entries = build_entries(args.propylon_cmd, [e for e in args.extras.split(",") if e])
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    soak = catalogue.SOAK in args.scenarios.split(",")
    missing = [tool for tool in ("nginx", "wrk") if not _which(tool)]
    if missing:
        print(
            f"bench: {' and '.join(missing)} missing: run benchmarks/ensure-tools", file=sys.stderr
        )
        return EXIT_NO_TOOLS
    if any(s.redis for s in scenarios) and not _redis_answers(bench_redis_url()):
        # A machine without Redis still benchmarks everything else (make test's smoke run).
        print(f"SKIPPED edge-redis: no Redis answers at {bench_redis_url()}", flush=True)
        scenarios = [s for s in scenarios if not s.redis]
    if any(s.otlp_export for s in scenarios) and not proto_available():
        # The receiver decodes with opentelemetry-proto, from the [otlp] extra (make install).
        print(
            "SKIPPED tracing-export: no opentelemetry-proto in this Python "
            "(pip install -e '.[otlp]')",
            flush=True,
        )
        scenarios = [s for s in scenarios if not s.otlp_export]
    busy = [port for port in (PROXY_PORT, UPSTREAM_PORT) if port_in_use(port)]
    if busy:
        print(
            f"bench: port {' and '.join(map(str, busy))} of 127.0.0.1 already in use; "
            "stop whatever listens there first",
            file=sys.stderr,
        )
        return EXIT_BROKEN

    out = args.out or Path(tempfile.gettempdir()) / time.strftime("propylon-bench-%Y%m%d-%H%M%S")
    for folder in (out / "logs", out / "run"):
        folder.mkdir(parents=True, exist_ok=True)
    pin = not args.no_pin
    settings = Settings(
        out=out,
        seconds=args.duration,
        warmup_seconds=args.warmup,
        connections=args.connections,
        threads=args.threads,
        proxy_cpus=args.proxy_cpus if pin else "",
        client_cpus=args.client_cpus if pin else "",
        upload_bytes=int(args.upload_mib * MIB),
        pause_seconds=0.2 if args.quick else 1.0,
    )
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)
    try:
        return _run(args, settings, scenarios, entries, soak)
    finally:
        stop_all()


def _run(
    args: argparse.Namespace,
    settings: Settings,
    scenarios: list[Scenario],
    entries: list[Entry],
    soak: bool,
) -> int:
    out = settings.out
    base_env = _base_env()
    upstream = start_upstream(
        out / "run" / "upstream", settings.client_cpus, base_env, out / "logs" / "upstream.log"
    )
    answers = upstream_answers(upstream)
    if isinstance(answers, str):
        print(f"bench: {answers}", file=sys.stderr)
        return EXIT_BROKEN
    keys = make_keys(out)
    fixtures = _fixtures(answers, keys, scenarios, args.tokens, out)
    print(f"# out: {out}", flush=True)
    if scenarios:
        print(
            f"# proxy CPUs {settings.proxy_cpus or 'any'}, wrk+U CPUs "
            f"{settings.client_cpus or 'any'}; wrk -t{settings.threads} -c{settings.connections}"
            f" -d{settings.seconds:g}s (+{settings.warmup_seconds:g}s warm-up) x {args.rounds} "
            f"rounds; entries {', '.join(e.name for e in entries)}",
            flush=True,
        )

    records: list[RunRecord] = []
    for round_number in range(1, args.rounds + 1):
        order = entries if round_number % 2 else list(reversed(entries))
        for scenario in scenarios:
            env = {**base_env, **keys.gateway_env(scenario.algorithm)}
            for entry in order:
                if entry.command is None and scenario.workers > 1:
                    continue  # U does not change with the proxy's workers
                record = measure(round_number, scenario, entry, settings, fixtures, env, upstream)
                records.append(record)
                _print_run(record)

    exit_code = EXIT_OK
    sections: list[str] = []
    if scenarios:
        exit_code = _report(args, settings, scenarios, records, sections)
    if soak:
        soak_entry = next(e for e in entries if e.name == GATEWAY)
        result = run_soak(
            soak_entry, settings, {**base_env, **keys.gateway_env("HS256")}, args.soak_seconds
        )
        text = soak_markdown(result, args.soak_seconds)
        (out / "soak.md").write_text(text + "\n")
        (out / "soak.json").write_text(json.dumps(dataclasses.asdict(result), indent=2))
        sections.append(text)
        if result.problem:
            exit_code = EXIT_BROKEN
        elif not result.passed and not args.quick and exit_code == EXIT_OK:
            exit_code = EXIT_TARGET_MISSED
    print("\n" + "\n\n".join(sections), flush=True)
    return exit_code


def _report(
    args: argparse.Namespace,
    settings: Settings,
    scenarios: list[Scenario],
    records: list[RunRecord],
    sections: list[str],
) -> int:
    cpus = os.cpu_count() or 1
    summary = summarize(records)
    verdicts = {s.name: judge(s, summary, records, cpus) for s in scenarios}
    header = (
        f"propylon vs nginx: {args.rounds} round(s) x {settings.seconds:g} s, wrk -t"
        f"{settings.threads} -c{settings.connections}, proxy on CPU {settings.proxy_cpus or 'any'}"
        f", wrk+U on CPU {settings.client_cpus or 'any'}, {cpus} CPUs, medians; ratio = "
        "propylon / nginx; vs proxy = propylon / propylon in proxy"
    )
    lines = notes(scenarios, summary, verdicts, records, settings.upload_bytes, cpus)
    markdown = "\n\n".join(
        [
            header,
            main_table(scenarios, summary, verdicts),
            "\n".join(lines),
            "Per entry:",
            detail_table(scenarios, summary),
        ]
    )
    (settings.out / "summary.md").write_text(markdown + "\n")
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    document = {
        "meta": {**meta, "cpus": cpus, "started": time.strftime("%Y-%m-%d %H:%M:%S")},
        "verdicts": {name: dataclasses.asdict(v) for name, v in verdicts.items()},
        "summary": {
            scenario: {entry: dataclasses.asdict(s) for entry, s in by_entry.items()}
            for scenario, by_entry in summary.items()
        },
        "runs": [dataclasses.asdict(r) for r in records],
    }
    (settings.out / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
    sections.append(markdown)
    outcomes = {v.outcome for v in verdicts.values()}
    if BROKEN in outcomes:
        return EXIT_BROKEN
    if FAIL in outcomes and not args.quick:
        return EXIT_TARGET_MISSED
    return EXIT_OK


def _fixtures(
    answers: Fixtures, keys: SigningKeys, scenarios: list[Scenario], tokens: int, out: Path
) -> Fixtures:
    algorithms = {s.algorithm for s in scenarios if s.bearer}
    rotated = {s.algorithm for s in scenarios if s.rotate}
    for algorithm in sorted(rotated):
        print(f"# writing {tokens} {algorithm} tokens", flush=True)
    return dataclasses.replace(
        answers,
        tokens={a: make_token(keys, a) for a in algorithms},
        rotation_files={
            a: write_rotation(keys, a, tokens, out / f"tokens-{a.lower()}.txt") for a in rotated
        },
    )


def _base_env() -> dict[str, str]:
    """The caller's environment, minus any JWT settings (each scenario sets its own), with the
    sbin folders on PATH (Debian's nginx lives there; not on a normal user's PATH)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROPYLON_JWT", "PROPYLON_JWKS", "PROPYLON_REDIS"))
    }
    path = env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    env["PATH"] = os.pathsep.join(path + [d for d in SBIN_DIRS if d not in path])
    return env


def _redis_answers(url: str) -> bool:
    """A PING gets PONG from the Redis at ``url`` (host and port only; 1 s at most)."""
    parsed = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), 1.0
        ) as sock:
            sock.settimeout(1.0)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _which(tool: str) -> bool:
    return shutil.which(tool, path=_base_env()["PATH"]) is not None


def _print_run(r: RunRecord) -> None:
    tag = f"[{r.scenario}.{r.entry}.r{r.round}]"
    if r.problem and not r.requests:
        print(f"{tag} FAILED: {r.problem}", flush=True)
        return
    p50 = "-" if r.p50_ms is None else f"{r.p50_ms:.2f}"
    p99 = "-" if r.p99_ms is None else f"{r.p99_ms:.2f}"
    print(
        f"{tag} {r.rps:9.1f} rps  p50 {p50} ms  p99 {p99} ms  peak RSS {r.rss_mib} MiB  "
        f"proxy CPU {r.proxy_cpu_pct}%  U CPU {r.upstream_cpu_pct}%  client CPU "
        f"{r.client_cpu_pct}%  CPUs busy {r.cpus_busy_pct}%"
        f"{'  ' + r.problem if r.problem else ''}",
        flush=True,
    )


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    print(f"bench: stopped by signal {signum}; stopping what it started", file=sys.stderr)
    stop_all()
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
