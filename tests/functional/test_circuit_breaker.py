"""The circuit breaker of Ocelot's QoSOptions, over real sockets.

Break durations are Ocelot's smallest allowed (just above 500 ms), so the waits stay short.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from propylon.config.loader import load_config
from propylon.config.model import GatewayConfig
from propylon.errors import envelope
from tests.support.client import request
from tests.support.gateway import running
from tests.support.upstreams import RecordingUpstream, Seen

CIRCUIT_OPEN = envelope(525, "CircuitOpen", "The route's circuit breaker is open; try again later.")


def _ocelot(tmp_path: Path, port: int, qos: dict[str, Any]) -> GatewayConfig:
    path = tmp_path / "ocelot.json"
    route = {
        "UpstreamPathTemplate": "/x",
        "DownstreamPathTemplate": "/x",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": port}],
        "QoSOptions": qos,
    }
    path.write_text(json.dumps({"Routes": [route]}))
    return load_config(path, env={"PROPYLON_JWT_SECRET": "x" * 32})


def _answers(up: RecordingUpstream, statuses: list[int]) -> None:
    async def answer(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        return web.json_response({}, status=statuses[0] if statuses else 200)

    up.handler = answer


async def test_open_after_minimum_throughput_failures_then_one_probe_closes_it(
    tmp_path: Path,
) -> None:
    up = await RecordingUpstream().start()
    statuses = [500]
    _answers(up, statuses)
    try:
        cfg = _ocelot(tmp_path, up.port, {"MinimumThroughput": 2, "BreakDuration": 600})
        async with running(cfg) as gw:
            assert [(await request(gw.port, "GET", "/x")).status for _ in range(2)] == [500, 500]
            # The third short-circuits: 503 CircuitOpen without calling the upstream.
            r = await request(gw.port, "GET", "/x")
            assert (r.status, r.body, r.header("Retry-After")) == (503, CIRCUIT_OPEN, "1")
            assert len(up.seen) == 2
            await asyncio.sleep(0.65)
            statuses.clear()  # the service recovered
            assert (await request(gw.port, "GET", "/x")).status == 200  # the probe
            assert [(await request(gw.port, "GET", "/x")).status for _ in range(3)] == [200] * 3
            assert len(up.seen) == 6
    finally:
        await up.close()


async def test_old_key_names_work_and_a_failed_probe_opens_it_again(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    _answers(up, [503])
    try:
        cfg = _ocelot(
            tmp_path, up.port, {"ExceptionsAllowedBeforeBreaking": 2, "DurationOfBreak": 600}
        )
        async with running(cfg) as gw:
            for _ in range(2):
                assert (await request(gw.port, "GET", "/x")).status == 503
            assert (await request(gw.port, "GET", "/x")).body == CIRCUIT_OPEN
            await asyncio.sleep(0.65)
            r = await request(gw.port, "GET", "/x")  # the probe fails (upstream's own 503)
            assert r.status == 503 and r.body != CIRCUIT_OPEN
            r = await request(gw.port, "GET", "/x")
            assert r.body == CIRCUIT_OPEN
            assert len(up.seen) == 3
    finally:
        await up.close()


async def test_half_open_lets_one_probe_through_at_a_time(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    release = asyncio.Event()
    probing = asyncio.Event()
    failing = [True]

    async def answer(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        if failing[0]:
            return web.json_response({}, status=500)
        probing.set()
        await release.wait()
        return web.json_response({})

    up.handler = answer
    try:
        cfg = _ocelot(tmp_path, up.port, {"MinimumThroughput": 2, "BreakDuration": 600})
        async with running(cfg) as gw:
            for _ in range(2):
                await request(gw.port, "GET", "/x")
            await asyncio.sleep(0.65)
            failing[0] = False
            probe = asyncio.create_task(request(gw.port, "GET", "/x"))
            await asyncio.wait_for(probing.wait(), 5)
            others = await asyncio.gather(*(request(gw.port, "GET", "/x") for _ in range(3)))
            assert [r.body for r in others] == [CIRCUIT_OPEN] * 3
            release.set()
            assert (await probe).status == 200
            assert (await request(gw.port, "GET", "/x")).status == 200
    finally:
        release.set()
        await up.close()


async def test_a_qos_timeout_is_a_504_and_counts_as_a_failure(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()

    async def hang(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        await asyncio.sleep(1.0)
        return web.json_response({})

    up.handler = hang
    try:
        cfg = _ocelot(
            tmp_path, up.port, {"MinimumThroughput": 2, "BreakDuration": 5000, "Timeout": 200}
        )
        async with running(cfg) as gw:
            for _ in range(2):
                started = time.perf_counter()
                assert (await request(gw.port, "GET", "/x")).status == 504
                assert time.perf_counter() - started < 2.0
            r = await request(gw.port, "GET", "/x")
            assert (r.status, r.body, r.header("Retry-After")) == (503, CIRCUIT_OPEN, "5")
            assert len(up.seen) == 2
    finally:
        await up.close()


async def test_client_errors_are_successes_for_the_breaker(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    _answers(up, [404])
    try:
        cfg = _ocelot(tmp_path, up.port, {"MinimumThroughput": 2, "BreakDuration": 600})
        async with running(cfg) as gw:
            assert [(await request(gw.port, "GET", "/x")).status for _ in range(5)] == [404] * 5
            assert len(up.seen) == 5
    finally:
        await up.close()
