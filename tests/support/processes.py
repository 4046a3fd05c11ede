"""`propylon run` as a real process, for tests that need its process boundary (signals,
workers, file descriptors, memory)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def ocelot_file(tmp: Path, upstream_port: int, *extra_routes: dict[str, Any]) -> Path:
    path = tmp / "ocelot.json"
    path.write_text(
        json.dumps(
            {
                "Routes": [
                    {
                        "UpstreamPathTemplate": "/api/{everything}",
                        "UpstreamHttpMethod": [],
                        "DownstreamPathTemplate": "/{everything}",
                        "DownstreamScheme": "http",
                        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream_port}],
                    },
                    *extra_routes,
                ]
            }
        )
    )
    return path


@contextmanager
def gateway_process(
    config: Path,
    port: int,
    workers: int,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
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
            str(workers),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode() if proc.stdout else "exited")
            time.sleep(0.05)
        time.sleep(0.3 if workers > 1 else 0)  # let every worker bind
        yield proc
    finally:
        # The whole session: a failing test must not leave workers serving the port.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def open_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")
