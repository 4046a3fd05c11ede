"""Cross-worker /stats over unix sockets: any worker answers for all, a dead one is skipped."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from propylon.stats import GatewayStats, StatsExchange, render_report
from propylon.stats.exchange import socket_path

ROUTES = [("GET /a", "Routes[0]"), ("GET /b", "Routes[1]")]
HOSTS = ["127.0.0.1:9001"]


@pytest.fixture
def run_dir() -> Iterator[str]:
    # Short and private, like the supervisor's: unix socket paths are limited to ~100 bytes.
    path = tempfile.mkdtemp(prefix="pst-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def worker_stats(requests: int, errors: int = 0) -> GatewayStats:
    stats = GatewayStats(ROUTES, HOSTS)
    for _ in range(requests):
        stats.request_seen()
        stats.routes[0].begin()
        stats.routes[0].end(200, 0.004, 10, 100)
        stats.upstreams[HOSTS[0]].request()
    for _ in range(errors):
        stats.upstreams[HOSTS[0]].error("refused")
    return stats


@asynccontextmanager
async def exchanges(
    run_dir: str, counts: list[int], workers: int | None = None
) -> AsyncIterator[list[StatsExchange]]:
    started: list[StatsExchange] = []
    try:
        for worker_id, n in enumerate(counts):
            ex = StatsExchange(worker_stats(n), run_dir, worker_id, workers or len(counts))
            await ex.start()
            started.append(ex)
        yield started
    finally:
        for ex in started:
            await ex.close()


async def test_any_worker_reports_the_sum_of_all(run_dir: str) -> None:
    async with exchanges(run_dir, [3, 5, 7]) as workers:
        for ex in workers:
            merged = await ex.collect(timeout=2.0)
            assert merged["workers_reporting"] == 3
            assert merged["requests"] == 15
            assert merged["routes"][0]["requests"] == 15
            assert merged["upstreams"][HOSTS[0]]["requests"] == 15
            report = render_report(merged, workers=3)
            assert report["workers_reporting"] == 3
            assert report["routes"][0]["responses"]["2xx"] == 15
            assert report["routes"][0]["latency_ms"]["count"] == 15
        # The numbers are live: a request counted after start shows up in the next collect.
        workers[2].stats.routes[1].begin()
        merged = await workers[0].collect(timeout=2.0)
        assert merged["routes"][1]["in_flight"] == 1


async def test_sockets_are_private_and_removed_on_close(run_dir: str) -> None:
    async with exchanges(run_dir, [1, 1]):
        for worker_id in (0, 1):
            mode = os.stat(socket_path(run_dir, worker_id)).st_mode
            assert stat.S_ISSOCK(mode)
            assert stat.S_IMODE(mode) == 0o600
    assert os.listdir(run_dir) == []


async def test_a_missing_peer_is_skipped(run_dir: str) -> None:
    async with exchanges(run_dir, [2, 4], workers=3) as workers:
        started = time.monotonic()
        merged = await workers[1].collect(timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert merged["workers_reporting"] == 2
        assert merged["requests"] == 6
        assert render_report(merged, workers=3)["workers"] == 3


async def test_a_hung_peer_costs_at_most_the_timeout(run_dir: str) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    hung = await asyncio.start_unix_server(never_answer, path=socket_path(run_dir, 2))
    try:
        async with exchanges(run_dir, [2, 4], workers=3) as workers:
            started = time.monotonic()
            merged = await workers[0].collect(timeout=0.3)
            elapsed = time.monotonic() - started
            assert 0.25 <= elapsed < 1.5
            assert merged["workers_reporting"] == 2
            assert merged["requests"] == 6
            assert accepted
    finally:
        hung.close()
        for writer in accepted:
            writer.close()
        await hung.wait_closed()


@pytest.mark.parametrize(
    "garbage", [b"", b"not json", b"[1, 2]", b'{"version": 99}', b'{"version": 1}']
)
async def test_a_peer_sending_garbage_is_skipped(run_dir: str, garbage: bytes) -> None:
    async def answer(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(garbage)
        await writer.drain()
        writer.close()

    bad = await asyncio.start_unix_server(answer, path=socket_path(run_dir, 1))
    try:
        async with exchanges(run_dir, [3], workers=2) as workers:
            merged = await workers[0].collect(timeout=1.0)
            assert merged["workers_reporting"] == 1
            assert merged["requests"] == 3
    finally:
        bad.close()
        await bad.wait_closed()


async def test_a_restarted_worker_replaces_its_stale_socket(run_dir: str) -> None:
    # A worker that died without cleaning up leaves a socket file nobody listens on.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(socket_path(run_dir, 1))
    stale.close()
    async with exchanges(run_dir, [1], workers=2) as workers:
        merged = await workers[0].collect(timeout=1.0)
        assert merged["workers_reporting"] == 1
        replacement = StatsExchange(worker_stats(9), run_dir, 1, 2)
        await replacement.start()
        try:
            merged = await workers[0].collect(timeout=1.0)
            assert merged["workers_reporting"] == 2
            assert merged["requests"] == 10
        finally:
            await replacement.close()


async def test_refuses_a_run_dir_others_can_write(run_dir: str) -> None:
    os.chmod(run_dir, 0o777)
    ex = StatsExchange(worker_stats(1), run_dir, 0, 2)
    with pytest.raises(PermissionError):
        await ex.start()
    assert os.listdir(run_dir) == []


PEER_SCRIPT = """
import asyncio, sys
from propylon.stats import GatewayStats, StatsExchange

async def main() -> None:
    stats = GatewayStats([("GET /a", "Routes[0]"), ("GET /b", "Routes[1]")], ["127.0.0.1:9001"])
    for _ in range(int(sys.argv[3])):
        stats.request_seen()
        stats.routes[1].begin()
        stats.routes[1].end(503, 0.5, 0, 7)
    ex = StatsExchange(stats, sys.argv[1], int(sys.argv[2]), 2)
    await ex.start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await ex.close()

asyncio.run(main())
"""


async def test_collects_from_a_worker_in_another_process(run_dir: str) -> None:
    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PEER_SCRIPT,
        run_dir,
        "1",
        "4",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert peer.stdout is not None
        line = await asyncio.wait_for(peer.stdout.readline(), 10)
        assert line.strip() == b"ready"
        async with exchanges(run_dir, [2], workers=2) as workers:
            report = render_report(await workers[0].collect(timeout=2.0), workers=2)
        assert report["workers_reporting"] == 2
        assert report["totals"]["requests"] == 6
        a, b = report["routes"]
        assert a["responses"]["2xx"] == 2
        assert b["responses"]["5xx"] == 4 and b["bytes_out"] == 28
        assert b["latency_ms"]["p99"] == pytest.approx(500, rel=0.05)
    finally:
        if peer.stdin is not None:
            peer.stdin.close()
        try:
            await asyncio.wait_for(peer.wait(), 5)
        except TimeoutError:
            peer.kill()
            await peer.wait()
