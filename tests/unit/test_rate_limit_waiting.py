"""The native rate-limit stage waiting for Redis, callback style (``Flow.wait_for``): a real
flow, stage and store; only the chain's side, where a resumed flow goes, is stood in for."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Coroutine
from typing import Any

import pytest

from propylon import errors
from propylon.config.model import DownstreamHost, KeyPart, RateLimitPolicy, RouteSpec
from propylon.http.request import HeaderRules, Request, sort_headers
from propylon.plane.stage import CONTINUE, PENDING, RESPOND, Flow
from propylon.policies.forwarding import TrustedProxies
from propylon.stages.rate_limit import NativeLimiter
from propylon.state import RedisStore
from tests.support.upstreams import RawUpstream

REDIS_ENV = "PROPYLON_TEST_REDIS_URL"


class Peer:
    peer = "127.0.0.1"
    local_port = 8000
    scheme = b"http"

    def gone(self) -> bool:
        return False


class Addressing:
    def client_address(self, peer: str, forwarded_for: list[bytes]) -> str:
        return TrustedProxies(()).client_address(peer, forwarded_for)


class Resumed:
    """Where resumed flows go: their outcomes, in order, and a future for the last one."""

    def __init__(self, expected: int) -> None:
        self.outcomes: list[tuple[Flow, int]] = []
        self.expected = expected
        self.all = asyncio.get_running_loop().create_future()

    def resume(self, flow: Flow, outcome: int) -> None:
        self.outcomes.append((flow, outcome))
        if len(self.outcomes) == self.expected:
            self.all.set_result(None)


def _no_spawn(work: Coroutine[Any, Any, None]) -> None:
    work.close()
    raise AssertionError("the rate-limit stage waits without a task")


def flow(resumed: Resumed) -> Flow:
    request = Request(b"GET", b"/a", True, True)
    sort_headers(request, [(b"Host", b"api")], HeaderRules(frozenset(), b"x-request-id"))
    return Flow(Peer(), request, b"/a", 0, Addressing(), resumed, _no_spawn)


def limiter(store: RedisStore, limit: int) -> NativeLimiter:
    route = RouteSpec(source="r", upstream_path="/a", downstream_hosts=(DownstreamHost("h", 1),))
    policy = RateLimitPolicy("default", limit, 3600.0, (KeyPart("route"),), "rate_limits[0]")
    return NativeLimiter((policy,), route, store)


async def test_requests_wait_for_their_batch_and_get_the_headers() -> None:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: the Redis variant is not run")
    prefix = f"propylon-test:{uuid.uuid4().hex[:12]}:"
    store = RedisStore(url, prefix=prefix, timeout=5.0, failure_policy="closed")
    stage = limiter(store, 3)
    resumed = Resumed(5)
    try:
        flows = [flow(resumed) for _ in range(5)]
        assert [stage.on_request(f) for f in flows] == [PENDING] * 5
        await asyncio.wait_for(resumed.all, 5)
    finally:
        await store.close()
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(url)
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    assert store.batches == 1
    assert [outcome for _f, outcome in resumed.outcomes] == [CONTINUE] * 3 + [RESPOND] * 2
    first, refused = resumed.outcomes[0][0], resumed.outcomes[4][0]
    assert b"RateLimit-Policy: " + b'"default";q=3;w=3600' in (first.response_lines or [])
    assert refused.reply is not None and refused.reply.kind is errors.RATE_LIMITED
    assert dict(refused.reply.headers)["Retry-After"] != ""


async def test_a_hanging_redis_fails_closed_after_the_timeout() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass

    silent = await RawUpstream(swallow).start()
    store = RedisStore(
        f"redis://127.0.0.1:{silent.port}/0", prefix="x:", timeout=0.2, failure_policy="closed"
    )
    stage = limiter(store, 3)
    resumed = Resumed(3)
    try:
        assert [stage.on_request(flow(resumed)) for _ in range(3)] == [PENDING] * 3
        await asyncio.wait_for(resumed.all, 1.0)
    finally:
        await store.close()
        await silent.close()
    for resumed_flow, outcome in resumed.outcomes:
        assert outcome == RESPOND
        assert resumed_flow.reply is not None
        assert resumed_flow.reply.kind is errors.STATE_UNAVAILABLE
        assert resumed_flow.reply.headers == (("Retry-After", "1"),)


async def test_a_stage_that_fails_while_deciding_answers_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resumed = Resumed(1)
    waiting = flow(resumed)

    def decide(f: Flow, value: object) -> int:
        raise KeyError(value)

    assert waiting.wait_for(decide) == PENDING
    with caplog.at_level(logging.ERROR, "propylon.plane"):
        asyncio.get_running_loop().call_soon(waiting.deliver, "late")
        await asyncio.wait_for(resumed.all, 1.0)
        # A second delivery is a stage's bug too: logged, and the flow is not resumed again.
        waiting.deliver("again")
    assert resumed.outcomes == [(waiting, RESPOND)]
    assert waiting.reply is not None and waiting.reply.kind is errors.INTERNAL
    assert "a stage failed while the request waited for it" in caplog.text
    assert "not waiting" in caplog.text
