"""``propylon run --log-format``: every record of every process (supervisor, workers, admin)
in the chosen format; one start-up summary record; security warnings that stand out."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.client import request
from tests.support.gateway import SECRET
from tests.support.upstreams import RecordingUpstream, free_port

# RequiredRole is not implemented: ignored, the route would let any token through.
LOOSE_ROUTE = {
    "UpstreamPathTemplate": "/admin/{everything}",
    "DownstreamPathTemplate": "/{everything}",
    "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": 9}],
    "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer", "RequiredRole": "admin"},
}


COMMAND = (sys.executable, "-m", "propylon", "run")


def ocelot(tmp: Path, upstream: int) -> Path:
    path = tmp / "ocelot.json"
    open_route = {
        "UpstreamPathTemplate": "/api/{everything}",
        "DownstreamPathTemplate": "/{everything}",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream}],
    }
    path.write_text(json.dumps({"Routes": [open_route, LOOSE_ROUTE]}))
    return path


def run_until_served(
    config: Path, port: int, *args: str
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``propylon run``; returns the process once it serves, and the stderr lines so
    far (read until the start-up record)."""
    proc = subprocess.Popen(
        [*COMMAND, "--config", str(config), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PROPYLON_JWT_SECRET": SECRET.decode(), "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:  # bounded: the process prints the summary within seconds
        lines.append(line.rstrip("\n"))
        if "listening on" in line:
            break
    else:
        raise AssertionError("\n".join(lines))
    return proc, lines


def stop(proc: subprocess.Popen[str]) -> list[str]:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert proc.stderr is not None
    # read(), not communicate(timeout=...): that reads the pipe itself, past what the
    # line iterator already buffered.
    return proc.stderr.read().splitlines()


async def test_json_format_covers_supervisor_workers_and_admin(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    port = free_port()
    admin = f"127.0.0.1:{free_port()}"
    try:
        config = ocelot(tmp_path, up.port)
        proc, lines = await asyncio.to_thread(
            run_until_served, config, port, "--log-format", "json", "--workers", "2",
            "--admin", admin,
        )  # fmt: skip
        try:
            assert (await request(port, "GET", "/api/x")).status == 200
            await asyncio.sleep(0.5)  # the second worker and the admin process are up
        finally:
            lines += await asyncio.to_thread(stop, proc)
    finally:
        await up.close()
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line JSON
    assert all({"time", "level", "logger", "message", "pid"} <= set(r) for r in records)
    (warning,) = [r for r in records if r["level"] == "WARNING" and r.get("security")]
    assert warning["key"] == "Routes[1].AuthenticationOptions.RequiredRole"
    assert warning["file"] == str(config)
    (started,) = [r for r in records if r.get("event") == "started"]
    assert started["listeners"] == [f"http://127.0.0.1:{port}"]
    assert started["routes"] == 2 and started["workers"] == 2
    assert started["public_routes"] == [{"source": "Routes[0]", "route": "* /api/{everything}"}]
    assert started["providers"] == ["Bearer"]
    assert started["build"].startswith("request path:")
    assert started["admin"] == admin
    # The supervisor (admin listener line), both workers (draining) and the admin process
    # share the format: records from at least four processes.
    draining = {r["pid"] for r in records if r["message"].endswith("draining")}
    assert len(draining) == 2
    assert any(r["message"].startswith("admin listener on") for r in records)
    assert len({r["pid"] for r in records}) >= 3


async def test_text_format_marks_security_warnings(tmp_path: Path) -> None:
    port = free_port()
    config = ocelot(tmp_path, 9)
    proc, lines = await asyncio.to_thread(run_until_served, config, port)
    lines += await asyncio.to_thread(stop, proc)
    (warning,) = [line for line in lines if "RequiredRole" in line]
    assert " WARNING propylon.config: SECURITY: " in warning
    assert warning.endswith(
        f"{config}: Routes[1].AuthenticationOptions.RequiredRole: warning (security): "
        "not implemented by propylon yet; ignored"
    )
    # The summary is one record: its first line carries the log prefix, the rest follow.
    at = next(i for i, line in enumerate(lines) if "listening on" in line)
    assert lines[at + 1].startswith("request path:"), lines
    assert lines[at + 2] == "public routes (served without a token): 1 of 2"


def test_check_prints_security_warnings_as_such(tmp_path: Path) -> None:
    config = ocelot(tmp_path, 9)
    done = subprocess.run(
        [sys.executable, "-m", "propylon", "check", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PROPYLON_JWT_SECRET": SECRET.decode()},
    )
    assert done.returncode == 0
    assert (
        f"{config}: Routes[1].AuthenticationOptions.RequiredRole: warning (security): "
        "not implemented by propylon yet; ignored"
    ) in done.stdout.splitlines()
