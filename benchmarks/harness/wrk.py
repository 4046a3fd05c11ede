"""Running wrk and reading its report."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.processes import run_client

BENCH_DIR = Path(__file__).resolve().parent.parent
ROTATE_SCRIPT = BENCH_DIR / "rotate-tokens.lua"
MILLISECONDS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One wrk invocation: keep-alive GETs to ``url`` for ``seconds``."""

    url: str
    seconds: float
    connections: int
    threads: int
    cpus: str = ""
    headers: tuple[str, ...] = ()
    tokens_file: Path | None = None
    """With a file, every request carries the next of its tokens (rotate-tokens.lua)."""


@dataclass(frozen=True, slots=True)
class WrkReport:
    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    non_2xx: int
    socket_errors: int


def wrk_argv(spec: LoadSpec) -> list[str]:
    seconds = max(1, round(spec.seconds))
    argv = ["wrk", f"-t{spec.threads}", f"-c{spec.connections}", f"-d{seconds}s"]
    argv += ["--latency", "--timeout", "5s"]
    for header in spec.headers:
        argv += ["-H", header]
    if spec.tokens_file is not None:
        argv += ["-s", str(ROTATE_SCRIPT), spec.url, "--", str(spec.tokens_file)]
    else:
        argv.append(spec.url)
    if spec.cpus:
        argv = ["taskset", "-c", spec.cpus, *argv]
    return argv


def run_wrk(spec: LoadSpec) -> str:
    """wrk's report; a wrk that hangs is killed a minute after its run should have ended."""
    return run_client(wrk_argv(spec), timeout=spec.seconds + 60)


def parse_wrk(text: str) -> WrkReport:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return WrkReport(
        requests=int(total.group(1)) if total else 0,
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=_percentile(text, "50"),
        p99_ms=_percentile(text, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
    )


def _percentile(text: str, pct: str) -> float | None:
    # From the "Latency Distribution" block that --latency adds.
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    if match is None:
        return None
    return float(match.group(1)) * MILLISECONDS[match.group(2)]
