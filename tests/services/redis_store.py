"""A real Redis for the shared-throttle tests, from PROPYLON_TEST_REDIS_URL (skipped, saying
so, when unset), with a key prefix of its own per test and its keys removed afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

REDIS_ENV = "PROPYLON_TEST_REDIS_URL"
STORES = ("memory", "redis")


@contextmanager
def redis_prefix() -> Iterator[tuple[str, str]]:
    """(url, prefix) for one test; its keys are deleted when it ends."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: Redis variant not run")
    prefix = f"propylon-test:{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
        yield url, prefix
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
        client.close()


@contextmanager
def store_settings(store: str) -> Iterator[dict[str, object]]:
    """Settings overrides selecting the throttle store: in memory, or a fresh Redis prefix."""
    if store == "memory":
        yield {}
        return
    with redis_prefix() as (url, prefix):
        yield {"redis_url": url, "redis_prefix": prefix}
