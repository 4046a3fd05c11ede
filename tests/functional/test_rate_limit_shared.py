"""Counters shared by real `propylon run` processes: the workers of one gateway (the shared
table), and two gateways sharing Redis, including Redis dying and coming back."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.client import request
from tests.support.processes import gateway_process
from tests.support.upstreams import RecordingUpstream, free_port

REDIS_ENV = "PROPYLON_TEST_REDIS_URL"


def native_file(tmp_path: Path, upstream: int, state: str = "", limit: int = 100) -> Path:
    path = tmp_path / f"gw-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(
        "propylon: 1\n"
        f"{state}"
        "routes:\n"
        f"- path: /a\n  downstream: {{hosts: ['127.0.0.1:{upstream}']}}\n"
        f"  rate_limits: [{{limit: {limit}, per: 1h, key: [route]}}]\n"
    )
    return path


async def statuses(ports: list[int], count: int) -> list[int]:
    async def one(i: int) -> int:
        try:
            answer = await request(ports[i % len(ports)], "GET", "/a", timeout=20)
        except (OSError, AssertionError):
            return 0
        return answer.status

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def test_two_workers_admit_exactly_the_limit_together(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        port = free_port()
        with gateway_process(native_file(tmp_path, up.port), port, workers=2):
            got = await statuses([port], 1000)
        assert (got.count(200), got.count(429)) == (100, 900)
        assert len(up.seen) == 100
        # The control: counters per worker admit more, so the shared table is what made it.
        up.seen.clear()
        port = free_port()
        per_worker = native_file(tmp_path, up.port, "state: {backend: memory}\n")
        with gateway_process(per_worker, port, workers=2):
            got = await statuses([port], 1000)
        assert got.count(200) > 100
    finally:
        await up.close()


def redis_url_or_skip() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: the Redis variant is not run")
    return url


def forget(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def test_two_gateways_sharing_redis_admit_exactly_the_limit(tmp_path: Path) -> None:
    url = redis_url_or_skip()
    prefix = f"propylon-test:{uuid.uuid4().hex[:12]}:"
    up = await RecordingUpstream().start()
    try:
        state = f"state: {{redis_url: '{url}', key_prefix: '{prefix}', timeout: 2}}\n"
        config = native_file(tmp_path, up.port, state)
        one, two = free_port(), free_port()
        with gateway_process(config, one, workers=1), gateway_process(config, two, workers=1):
            got = await statuses([one, two], 1000)
        assert (got.count(200), got.count(429)) == (100, 900)
        assert len(up.seen) == 100
    finally:
        forget(url, prefix)
        await up.close()


@contextmanager
def own_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not on PATH: the outage test needs a Redis of its own")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    import socket

    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.02)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(5)


@pytest.mark.parametrize(("policy", "while_down"), [("open", 200), ("closed", 503)])
async def test_redis_dying_and_returning_mid_run(
    tmp_path: Path, policy: str, while_down: int
) -> None:
    redis_port = free_port()
    up = await RecordingUpstream().start()
    try:
        state = (
            f"state: {{redis_url: 'redis://127.0.0.1:{redis_port}/0', timeout: 0.2, "
            f"on_failure: {policy}}}\n"
        )
        config = native_file(tmp_path, up.port, state, limit=3)
        port = free_port()
        with own_redis(redis_port) as redis_proc, gateway_process(config, port, 1) as gateway:
            before = [(await request(port, "GET", "/a")).status for _ in range(4)]
            redis_proc.kill()
            redis_proc.wait(5)
            down = [await request(port, "GET", "/a") for _ in range(3)]
            with own_redis(redis_port):
                # A fresh Redis: no script loaded (NOSCRIPT), no counters.
                await asyncio.sleep(1.1)  # one probe interval
                back = [(await request(port, "GET", "/a")).status for _ in range(4)]
            gateway.terminate()
            log = gateway.communicate(timeout=10)[0].decode()
        assert before == [200, 200, 200, 429]
        assert [a.status for a in down] == [while_down] * 3
        if policy == "closed":
            assert down[0].json() == {
                "code": 511,
                "codemessage": "NotReady",
                "message": "The rate-limit store does not answer; try again shortly.",
            }
            assert down[0].header("Retry-After") == "1"
        else:
            assert down[0].header("RateLimit") is None
        assert back == [200, 200, 200, 429]
        # Logged once when the outage began and once when it ended, not per request.
        assert log.count("does not answer") == 1, log
        assert log.count("answers again") == 1, log
    finally:
        await up.close()
