"""The real `propylon run` command: workers sharing a port, /stats across them, draining."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.client import request
from tests.support.processes import gateway_process, ocelot_file
from tests.support.upstreams import RecordingUpstream, Seen, free_port


async def test_workers_share_the_port_and_stats_cover_all(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    port = free_port()
    try:
        with gateway_process(ocelot_file(tmp_path, up.port), port, workers=2) as proc:
            for _ in range(40):
                r = await request(port, "GET", "/api/things")
                assert r.status == 200
            report = (await request(port, "GET", "/stats")).json()
            assert isinstance(report, dict)
            assert report["workers"] == 2
            route_total = sum(e["requests"] for e in report["routes"])
            assert route_total == 40
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        await up.close()


async def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    async def slow(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        await asyncio.sleep(1.0)
        return web.json_response({"slow": True})

    up = await RecordingUpstream(handler=slow).start()
    port = free_port()
    try:
        with gateway_process(ocelot_file(tmp_path, up.port), port, workers=1) as proc:
            pending = asyncio.create_task(request(port, "GET", "/api/slow", timeout=10))
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            r = await pending
            assert r.status == 200 and r.json() == {"slow": True}
            assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        await up.close()


async def test_bad_config_does_not_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "Routes": [
                    {
                        "UpstreamPathTemplate": "/x",
                        "DownstreamPathTemplate": "/x",
                        "DownstreamHostAndPorts": [{"Host": "h", "Port": "eighty"}],
                    }
                ]
            }
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "propylon",
        "run",
        "--config",
        str(bad),
        "--port",
        str(free_port()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode not in (0, None)
    text = out.decode()
    assert str(bad) in text and "Routes[0].DownstreamHostAndPorts[0].Port" in text


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


async def test_workers_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    port = free_port()
    try:
        with gateway_process(ocelot_file(tmp_path, up.port), port, workers=2) as proc:
            children = await asyncio.to_thread(_children, proc.pid)
            assert len(children) == 2
            proc.kill()  # SIGKILL: the supervisor gets no chance to stop its workers
            await asyncio.to_thread(proc.wait, 5)
            assert await asyncio.to_thread(_wait_gone, children, 10)
    finally:
        await up.close()


async def test_rs256_provider_from_a_pem_file_in_the_environment(tmp_path: Path) -> None:
    """PROPYLON_JWT_PUBLIC_KEY + RS256 through the real command, as users configure it."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "public.pem"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = tmp_path / "routes.json"
    up = await RecordingUpstream().start()
    config.write_text(
        json.dumps(
            {
                "Routes": [
                    {
                        "UpstreamPathTemplate": "/p",
                        "UpstreamHttpMethod": ["GET"],
                        "DownstreamPathTemplate": "/p",
                        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": up.port}],
                        "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
                    }
                ]
            }
        )
    )
    port = free_port()
    os.environ["PROPYLON_JWT_PUBLIC_KEY"] = str(pem)
    os.environ["PROPYLON_JWT_ALGORITHMS"] = "RS256"
    try:
        with gateway_process(config, port, workers=1):
            good = jwt.encode({"sub": "ada", "exp": int(time.time()) + 60}, key, "RS256")
            r = await request(port, "GET", "/p", [("Authorization", f"Bearer {good}")])
            assert r.status == 200 and up.last.header("User") == "ada"
            r = await request(port, "GET", "/p")
            assert r.status == 401
    finally:
        del os.environ["PROPYLON_JWT_PUBLIC_KEY"]
        del os.environ["PROPYLON_JWT_ALGORITHMS"]
        await up.close()


def _minor_faults(pid: int) -> int:
    # /proc/<pid>/stat: the command name is in parentheses and may contain spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[7])  # field 10 of proc(5), minflt


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc (Linux)")
async def test_streaming_large_bodies_does_not_fault_in_fresh_memory(tmp_path: Path) -> None:
    """Large body chunks come from the heap, not a fresh mmap per chunk (engine/allocator.py).

    Without the malloc thresholds each 8 MiB upload page-faults ~2,700 pages anew (every
    chunk above glibc's initial 128 KiB mmap threshold is mapped, touched and unmapped);
    with them, a handful in total."""
    up = await RecordingUpstream().start()
    port = free_port()
    body = os.urandom(8 * 1024 * 1024)
    try:
        with gateway_process(ocelot_file(tmp_path, up.port), port, workers=1) as proc:
            first = await request(port, "POST", "/api/upload", body=body, timeout=30)
            assert first.status == 200
            before = _minor_faults(proc.pid)
            for _ in range(5):
                r = await request(port, "POST", "/api/upload", body=body, timeout=30)
                assert r.status == 200
            faults = _minor_faults(proc.pid) - before
    finally:
        await up.close()
    assert [s.body_len for s in up.seen] == [len(body)] * 6
    assert faults < 1500, f"{faults} minor page faults for 5 uploads of 8 MiB"


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_second_instance_on_a_served_port_refuses_to_start(
    tmp_path: Path, workers: int
) -> None:
    """#11 item 4: SO_REUSEPORT let a second instance's workers join the first's, and the
    two configs then answered at random."""
    up = await RecordingUpstream().start()
    port = free_port()
    try:
        with gateway_process(ocelot_file(tmp_path, up.port), port, workers=2):
            second = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "propylon",
                "run",
                "--config",
                str(ocelot_file(tmp_path, up.port)),
                "--port",
                str(port),
                "--workers",
                str(workers),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(second.communicate(), 30)
            assert second.returncode == 1
            text = out.decode()
            assert f"cannot listen on 127.0.0.1:{port}" in text
            assert "another propylon" in text
            # The first instance still serves alone.
            assert (await request(port, "GET", "/api/x")).status == 200
    finally:
        await up.close()
