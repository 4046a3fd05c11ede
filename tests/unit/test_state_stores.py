"""The state stores: bounded under a flood of keys, exact across forked workers, and the
Redis scripts deciding as the Python transitions do (with a real Redis)."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from pathlib import Path

import pytest

from propylon.ratelimit.fixed_window import FixedWindow
from propylon.ratelimit.gcra import Gcra
from propylon.state import MemoryStore, RedisStore, SharedStore, StoreUnavailable

REDIS_ENV = "PROPYLON_TEST_REDIS_URL"


def test_memory_store_is_bounded_under_a_flood_of_distinct_keys() -> None:
    store = MemoryStore(max_keys=1000)
    limiter = Gcra([5], [3600.0])
    now = time.time()
    for i in range(20_000):
        store.run(limiter, [b"flood:%d" % i], now)
    assert len(store) == 1000
    # The most recent keys are the ones kept: key 19999 has used one of its five.
    assert store.run(limiter, [b"flood:19999"], now)[2] - now == pytest.approx(720.0 * 2)


def test_memory_store_drops_expired_records() -> None:
    store = MemoryStore(max_keys=10)
    limiter = Gcra([1], [0.5])
    now = time.time()
    assert store.run(limiter, [b"k"], now)[0] == 1.0
    assert store.run(limiter, [b"k"], now + 0.1)[0] == 0.0
    assert store.run(limiter, [b"k"], now + 0.6)[0] == 1.0


def test_shared_store_is_bounded_and_keeps_counting(tmp_path: Path) -> None:
    store = SharedStore(str(tmp_path), max_keys=64)
    limiter = FixedWindow(3, 60.0, 0.0)
    now = time.time()
    for i in range(5000):
        store.run(limiter, [b"flood:%d" % i], now)
    assert len(store) <= 64
    assert os.path.getsize(store.path) < 64 * 1024
    assert [store.run(limiter, [b"me"], now)[0] for _ in range(4)] == [1.0, 2.0, 3.0, 4.0]
    asyncio.run(store.close())


def test_forked_workers_share_one_budget_exactly(tmp_path: Path) -> None:
    limiter = Gcra([500], [3600.0])
    first = SharedStore(str(tmp_path), max_keys=1024)
    readers = []
    pids = []
    for _ in range(4):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # a worker: its own mapping of the same file, as after the supervisor's fork
            os.close(read_end)
            mine = SharedStore(str(tmp_path), max_keys=1024)
            admitted = sum(int(mine.run(limiter, [b"shared"], time.time())[0]) for _ in range(300))
            os.write(write_end, str(admitted).encode())
            os._exit(0)
        os.close(write_end)
        readers.append(read_end)
        pids.append(pid)
    total = 0
    for pid, fd in zip(pids, readers, strict=True):
        os.waitpid(pid, 0)
        total += int(os.read(fd, 32))
        os.close(fd)
    assert total == 500  # 1200 attempts by four processes against one budget of 500
    assert first.run(limiter, [b"shared"], time.time())[0] == 0.0
    asyncio.run(first.close())


def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: the Redis variant is not run")
    return url


async def _cleanup(url: str, prefix: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["gcra", "fixed"])
async def test_the_lua_scripts_decide_as_the_python_transitions(kind: str) -> None:
    url = redis_url()
    prefix = f"propylon-test:{uuid.uuid4().hex[:12]}:"
    store = RedisStore(url, prefix=prefix, timeout=2.0, failure_policy="open")
    local = MemoryStore(100)
    limiter = Gcra([3, 5], [0.3, 60.0]) if kind == "gcra" else FixedWindow(3, 0.3, 0.2)
    keys = [b"a", b"b"] if kind == "gcra" else [b"a"]
    rng = random.Random(7)
    try:
        for _ in range(25):
            remote = await store.run_async(limiter, keys)
            # the same decision from the same state at Redis's own clock
            mine = local.run(limiter, keys, remote[1] if kind == "gcra" else remote[3])
            assert remote[0] == mine[0]
            assert remote[2:] == pytest.approx(mine[2:], abs=1e-5)
            await asyncio.sleep(rng.random() * 0.05)
    finally:
        await store.close()
        await _cleanup(url, prefix)


async def test_a_redis_that_does_not_answer_fails_fast_and_is_counted() -> None:
    # A port nobody listens on: the connection is refused at once.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisStore(
        f"redis://127.0.0.1:{port}/0", prefix="x:", timeout=0.2, failure_policy="closed"
    )
    limiter = Gcra([1], [1.0])
    try:
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                await store.run_async(limiter, [b"k"])
    finally:
        await store.close()
    assert (store.health.down, store.health.outages, store.health.failed_decisions) == (True, 1, 5)
