"""The gateway's own CPU time per request, without sockets: a steady, noise-free number.

`make bench` measures what users see, against nginx, but on shared machines its ratios move
by several points between runs. This drives one worker's real objects (the client protocol,
the decision, authentication, the exchange, the upstream protocol) in-process with
transports that only count writes, so it measures the Python (or compiled) code a request
costs and nothing else. Use it to judge a change to the request path; use `make bench` to
report.

    .venv/bin/python benchmarks/python_cost.py                 # proxy, cached, rotate
    taskset -c 0 .venv/bin/python benchmarks/python_cost.py --requests 100000
    .venv/bin/python benchmarks/python_cost.py --instructions  # callgrind, deterministic

Timings on a shared machine still move by 5-10% between runs. ``--instructions`` counts
the instructions a request costs instead, under valgrind's callgrind (Debian's
``valgrind``): each scenario runs twice with different request counts, and the difference
divided by the difference in requests removes start-up. The count is the same from run to
run (the hash seed is fixed) to well under 0.5%, whatever else the machine does, so it
resolves small changes that timings cannot; it takes about a minute per scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import uvloop

from propylon.auth.assertion import load_or_create_key
from propylon.compilation import describe
from propylon.config.loader import load_config
from propylon.config.model import AccessLogSpec, TracingSpec
from propylon.engine.gateway import Gateway
from propylon.engine.server import ClientConnection
from propylon.logs.access import AccessLog
from propylon.tracing.context import SpanSink, Trace
from propylon.upstream.connection import UpstreamConnection

ROUTES = Path(__file__).resolve().parent / "routes.ocelot.json"
LIMITED = Path(__file__).resolve().parent / "routes.ratelimit.yaml"
SIGNED = "JWT HS256, cached, signed assertion"
LOGGED = "proxy only, access log (JSON, file)"
QUEUED = "proxy only, spans queued (OTLP)"
ENCODED = "proxy only, spans encoded (OTLP)"
SECRET = "python-cost-secret-0123456789abcdef"
ENV = {"PROPYLON_JWT_SECRET": SECRET, "PROPYLON_JWT_ALGORITHMS": "HS256"}
# What U (nginx) answers in `make bench`, byte for byte apart from the date.
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 23 Nov 2026 09:45:11 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 200\r\nConnection: keep-alive\r\n\r\n"
    + b"x"
    * 200
)


class CountingTransport:
    """Stands in for a socket: accepts writes, never pushes back."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...

    def is_closing(self) -> bool:
        return False


def request(
    path: bytes,
    token: str | None = None,
    origin: bytes | None = None,
    traceparent: bytes | None = None,
) -> bytes:
    head = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    if traceparent is not None:
        head += b"traceparent: " + traceparent + b"\r\ntracestate: vendor=opaque\r\n"
    if token is not None:
        head += b"Authorization: Bearer " + token.encode() + b"\r\n"
    if origin is not None:
        head += b"Origin: " + origin + b"\r\n"
    return head + b"\r\n"


def tokens(count: int) -> list[str]:
    return [
        jwt.encode({"sub": f"user-{i:05d}", "exp": 4102444800}, SECRET, algorithm="HS256")
        for i in range(count)
    ]


WARMUP = 5000
"""Requests sent before measuring (fewer when a round is shorter)."""


def signing_env() -> dict[str, str]:
    """ENV with the signed hop on (a throwaway key): every authenticated route signs."""
    directory = tempfile.mkdtemp(prefix="python-cost-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    key = Path(directory) / "assertion.pem"
    load_or_create_key(key)
    return {**ENV, "PROPYLON_ASSERTION_KEY_FILE": str(key)}


async def cost(
    requests: list[bytes],
    count: int,
    rounds: int,
    routes: Path = ROUTES,
    env: dict[str, str] = ENV,
    access_log: AccessLog | None = None,
    spans: SpanSink | None = None,
) -> float:
    """Best-of-rounds microseconds per request through one gateway."""
    gateway = Gateway(load_config(str(routes), env=env), access_log=access_log)
    gateway.tracing.sink = spans  # as Gateway.start sets it when an OTLP endpoint is set
    client = ClientConnection(gateway)
    client_transport = CountingTransport()
    client.connection_made(client_transport)  # type: ignore[arg-type]
    pool = next(iter(gateway.pools.values()))
    upstream = UpstreamConnection(pool)
    upstream.connection_made(CountingTransport())  # type: ignore[arg-type]
    pool.release(upstream)
    feed_client, feed_upstream = client.data_received, upstream.data_received
    variety = len(requests)
    for i in range(min(count, WARMUP)):  # warm the caches this scenario is meant to hit
        feed_client(requests[i % variety])
        feed_upstream(RESPONSE)
    best = float("inf")
    for _ in range(rounds):
        before = client_transport.writes
        started = time.perf_counter()
        for i in range(count):
            feed_client(requests[i % variety])
            feed_upstream(RESPONSE)
        best = min(best, (time.perf_counter() - started) / count)
        if client_transport.writes - before != count:
            raise SystemExit("the gateway did not answer every request: the driver is broken")
    if access_log is not None:
        access_log.close()
    return best * 1e6


def access_log() -> AccessLog:
    """A JSON access log to a throwaway file (its writer thread writes as in a worker)."""
    directory = tempfile.mkdtemp(prefix="python-cost-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    log = AccessLog(AccessLogSpec(str(Path(directory) / "access.log")))
    log.start(asyncio.get_running_loop())
    return log


class QueuedSpans:
    """An OTLP sink that takes each sampled request's ``Trace`` and drops it: what tracing
    with export costs the request path itself."""

    def submit(self, trace: Trace) -> None:
        pass


class EncodedSpans:
    """An OTLP sink that writes each ``Trace`` as protobuf at once, in this thread (a
    worker's exporter thread does it in batches, under the same GIL): the request path and
    the encoding, without the post to a collector."""

    def __init__(self) -> None:
        # Imported only here: the [otlp] extra.
        from propylon.tracing.export import BATCH_SIZE, resource_message
        from propylon.tracing.otlp import SpanEncoder

        spec = TracingSpec("http://127.0.0.1:4318/v1/traces")
        self.encoder = SpanEncoder(resource_message(spec), b"\x0a\x08propylon")
        self.batch = 2 * BATCH_SIZE  # spans: each request here has two

    def submit(self, trace: Trace) -> None:
        encoder = self.encoder
        encoder.add(trace)
        if encoder.spans >= self.batch:  # a batch, as the exporter's
            encoder.take()


async def measure(
    requests: list[bytes], count: int, rounds: int, routes: Path, env: dict[str, str], name: str
) -> float:
    log = access_log() if name == LOGGED else None
    spans = QueuedSpans() if name == QUEUED else EncodedSpans() if name == ENCODED else None
    return await cost(requests, count, rounds, routes, env, log, spans)


def instructions(name: str) -> float:
    """Instructions per request of scenario ``name``, counted by callgrind."""

    def collected(requests: int) -> int:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                __file__,
                "--scenario",
                name,
                "--requests",
                str(requests),
                "--rounds",
                "1",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
        )
        found = re.search(r"Collected : (\d+)", run.stderr)
        if found is None:
            raise SystemExit(f"callgrind printed no total:\n{run.stderr[-2000:]}")
        return int(found.group(1))

    # Both runs warm up with WARMUP requests, so they differ by exactly `extra` requests.
    extra = 6000
    return (collected(WARMUP + extra) - collected(WARMUP)) / extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scenario", help="run only this one (a name as printed)")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (callgrind), not time"
    )
    args = parser.parse_args()
    # Built only when run: signing 10,000 tokens under callgrind would take a minute.
    scenarios: dict[str, Callable[[], list[bytes]]] = {
        "proxy only": lambda: [request(b"/profiles/12345")],
        # Real clients ask for many ids: each new path is canonicalised and matched again.
        # W3C trace context: every request above begins a trace; this one continues the
        # client's (its traceparent checked, a new span id, its tracestate sent on).
        "proxy only, client traceparent": lambda: [
            request(
                b"/profiles/12345",
                traceparent=b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
        ],
        "proxy only, 10,000 paths": lambda: [request(b"/profiles/%d" % i) for i in range(10000)],
        # The cors stage: Origin matched, Access-Control-* and Vary lines on the response.
        # The ip_filter stage: the client address judged against allow and block lists.
        "proxy + IP rules, allowed address": lambda: [request(b"/ip/profiles/12345")],
        "proxy + CORS, allowed origin": lambda: [
            request(b"/cors/profiles/12345", origin=b"https://app.example")
        ],
        # The circuit breaker's gate and tally (closed: every request admitted and counted).
        "proxy + circuit breaker": lambda: [request(b"/qos/profiles/12345")],
        "JWT HS256, cached": lambda: [request(b"/secure/profiles/12345", tokens(1)[0])],
        "JWT HS256, 10,000 tokens (misses)": lambda: [
            request(b"/secure/profiles/12345", t) for t in tokens(10000)
        ],
        # The rate-limit stage (in-process counters): the same cached-JWT request, limited
        # per caller, and a public route limited per client address.
        "JWT HS256, cached + rate limit (sub)": lambda: [
            request(b"/secure/profiles/12345", tokens(1)[0])
        ],
        "proxy + rate limit (ip)": lambda: [request(b"/limited/profiles/12345")],
        # The same cached token with the signed hop on: the assertion stage's memo hit.
        SIGNED: lambda: [request(b"/secure/profiles/12345", tokens(1)[0])],
        # "proxy only" with the access log on: a JSON line per request, to a file.
        LOGGED: lambda: [request(b"/profiles/12345")],
        # "proxy only" with span export on (sampling 1.0): each request's Trace recorded
        # and handed over; then also written as OTLP protobuf (SERVER and CLIENT span).
        QUEUED: lambda: [request(b"/profiles/12345")],
        ENCODED: lambda: [request(b"/profiles/12345")],
    }
    routes = {name: LIMITED for name in scenarios if "rate limit" in name}
    if args.scenario is not None:
        if args.scenario not in scenarios:
            raise SystemExit(f"no scenario {args.scenario!r}; one of {', '.join(scenarios)}")
        scenarios = {args.scenario: scenarios[args.scenario]}
    print(describe())
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    for name, build in scenarios.items():
        if args.instructions:
            print(f"{name:36s} {instructions(name):8.0f} instructions per request")
        else:
            env = signing_env() if name == SIGNED else ENV
            micros = uvloop.run(
                measure(build(), args.requests, args.rounds, routes.get(name, ROUTES), env, name)
            )
            print(f"{name:36s} {micros:6.2f} us per request")


if __name__ == "__main__":
    main()
