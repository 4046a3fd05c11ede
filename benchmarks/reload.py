"""Hot reload under load: ``make bench-reload``.

    .venv/bin/python benchmarks/reload.py                      # 30 s, 64 connections, 50 reloads
    .venv/bin/python benchmarks/reload.py --duration 10 --reloads 20

Starts a small upstream and ``propylon run --workers N`` on free loopback ports, keeps
``--connections`` keep-alive connections busy with ``GET /x`` for ``--duration`` seconds, and
meanwhile rewrites the config file ``--reloads`` times, alternating two valid configs (``/x``
forwards to a different upstream path and with another timeout in each; each has one route
the other lacks), each time followed by SIGHUP to the supervisor. Counted: responses by
status, failed requests (anything but 200, or no complete response), connections reset or
closed by the gateway, and the reloads the supervisor logged as applied.

Exit status: 0 when every request succeeded, nothing was reset and every reload was applied;
1 otherwise; 2 when the gateway could not be started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httptools

UPSTREAM = """
import asyncio, sys

HEAD = b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n"

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        while b"\\r\\n\\r\\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\\r\\n\\r\\n", 1)
            path = head.split(b" ", 2)[1]  # the body says which path the gateway sent
            self.transport.write(HEAD % len(path) + path)

async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(upstream: int, flavour: int) -> str:
    """Two valid configs: /x differs (downstream path, timeout), and one route each."""
    host = {"hosts": [f"127.0.0.1:{upstream}"]}
    routes = [
        {"path": "/x", "downstream": {**host, "path": f"/x{flavour}"}, "timeout": 30 - flavour},
        {"path": f"/only-{flavour}", "downstream": host},
    ]
    return json.dumps({"routes": routes})


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(text)
    os.replace(temporary, path)


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.served: Counter[str] = Counter()
        """Upstream paths /x was forwarded to: both configs' (/x1, /x2) must appear."""
        self.failed = 0
        self.resets = 0
        self.closed = 0
        """Connections the gateway closed between requests (not an error, but counted)."""


class _Parser:
    def __init__(self) -> None:
        self.done = False
        self.close = False
        self.body = b""
        self.parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp's should_keep_alive() is False once a message is complete: read it here.
        if name.lower() == b"connection" and b"close" in value.lower():
            self.close = True

    def on_message_complete(self) -> None:
        self.done = True


async def client(port: int, until: float, tally: Tally) -> None:
    request = b"GET /x HTTP/1.1\r\nHost: bench\r\n\r\n"
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            tally.failed += 1
            await asyncio.sleep(0.01)
            continue
        try:
            while time.monotonic() < until:
                writer.write(request)
                parsed = _Parser()
                while not parsed.done:
                    data = await asyncio.wait_for(reader.read(65536), 10)
                    if not data:
                        break
                    parsed.parser.feed_data(data)
                if not parsed.done:
                    # Closed before any byte of an answer: a keep-alive close we raced.
                    tally.closed += 1
                    tally.failed += 1
                    break
                status = parsed.parser.get_status_code()
                tally.statuses[status] += 1
                tally.served[parsed.body.decode("latin-1")] += 1
                if status != 200:
                    tally.failed += 1
                if parsed.close:
                    tally.closed += 1
                    break
        except (ConnectionResetError, BrokenPipeError):
            tally.resets += 1
            tally.failed += 1
        except (TimeoutError, httptools.HttpParserError, OSError):
            tally.failed += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def reloads(
    path: Path, upstream: int, supervisor: int, count: int, start: float, duration: float
) -> int:
    """Rewrite and SIGHUP ``count`` times, evenly over the middle of the run."""
    sent = 0
    for i in range(count):
        at = start + duration * (i + 1) / (count + 1)
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        write_atomically(path, config_text(upstream, 1 + (i + 1) % 2))
        os.kill(supervisor, signal.SIGHUP)
        sent += 1
    return sent


async def load(
    args: argparse.Namespace, port: int, config: Path, upstream_port: int, supervisor: int
) -> tuple[Tally, int, float]:
    tally = Tally()
    start = time.monotonic()
    until = start + args.duration
    clients = [asyncio.create_task(client(port, until, tally)) for _ in range(args.connections)]
    sent = await reloads(config, upstream_port, supervisor, args.reloads, start, args.duration)
    await asyncio.gather(*clients)
    return tally, sent, time.monotonic() - start


def run(args: argparse.Namespace) -> int:
    upstream_port, port = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="propylon-bench-reload-"))
    config = work / "gateway.yaml"
    write_atomically(config, config_text(upstream_port, 1))
    log_path = work / "gateway.log"
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(upstream_port)])
    with log_path.open("wb") as log:
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "propylon",
                "run",
                "--config",
                str(config),
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if gateway.poll() is not None or time.monotonic() > deadline:
                print(log_path.read_text(), file=sys.stderr)
                return 2
            time.sleep(0.05)
        time.sleep(0.5)  # every worker bound
        tally, sent, elapsed = asyncio.run(load(args, port, config, upstream_port, gateway.pid))
        time.sleep(0.5)
    finally:
        gateway.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            gateway.wait(30)
        if gateway.poll() is None:
            gateway.kill()
        upstream.kill()
        upstream.wait()
    log_text = log_path.read_text()
    # Worker 0 says so once it serves the new version (the others acknowledge it likewise).
    applied = log_text.count("config reloaded: ")
    failures = log_text.count("config reload failed")
    total = sum(tally.statuses.values())
    result = {
        "duration_s": round(elapsed, 1),
        "connections": args.connections,
        "workers": args.workers,
        "reloads_sent": sent,
        "reloads_applied": applied,
        "reloads_failed": failures,
        "requests": total,
        "requests_per_s": round(total / elapsed),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "forwarded_as": dict(sorted(tally.served.items())),
        "failed_requests": tally.failed,
        "reset_connections": tally.resets,
        "closed_by_gateway": tally.closed,
    }
    print(json.dumps(result, indent=2))
    ok = (
        tally.failed == 0
        and tally.resets == 0
        and applied == sent
        and failures == 0
        and set(tally.served) == {"/x1", "/x2"}
    )
    print("bench-reload:", "OK" if ok else "FAILED", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (30)")
    ap.add_argument("--connections", type=int, default=64, help="keep-alive connections (64)")
    ap.add_argument("--reloads", type=int, default=50, help="SIGHUP reloads during the run (50)")
    ap.add_argument("--workers", type=int, default=2, help="gateway workers (2)")
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
