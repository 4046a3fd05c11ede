"""Host health over real sockets: passive ejection, the all-out 503, active checks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from propylon.config.model import BalancerSpec, DownstreamHost, EjectionSpec, HealthCheckSpec
from propylon.errors import envelope
from tests.support.client import request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RawUpstream, RecordingUpstream, read_head


async def _hang_up(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    await read_head(reader)  # read the request, answer nothing, close


def _hosts(*ports: int) -> tuple[DownstreamHost, ...]:
    return tuple(DownstreamHost("127.0.0.1", p) for p in ports)


async def test_a_failing_host_is_ejected_and_the_others_take_its_share() -> None:
    bad = await RawUpstream(_hang_up).start()
    good = await RecordingUpstream().start()
    try:
        spec = replace(
            route("/x", good.port),
            downstream_hosts=_hosts(bad.port, good.port),
            ejection=EjectionSpec(consecutive_failures=2, base=30.0),
        )
        async with running(config(spec)) as gw:
            statuses = [(await request(gw.port, "GET", "/x")).status for _ in range(12)]
            assert statuses.count(502) == 2 and statuses.count(200) == 10
            assert bad.requests == 2
            report = (await request(gw.port, "GET", "/stats")).json()
            health = report["upstreams"][f"127.0.0.1:{bad.port}"]["health"]  # type: ignore[index]
            assert health["up"] is False and health["last_cause"] == "closed"
            assert health["ejected_until"].endswith("Z")
            good_health = report["upstreams"][f"127.0.0.1:{good.port}"]["health"]  # type: ignore[index]
            assert good_health["up"] is True and good_health["ejected_until"] is None
    finally:
        await bad.close()
        await good.close()


async def test_every_host_out_is_a_503_at_once_without_a_connect_attempt() -> None:
    bad = await RawUpstream(_hang_up).start()
    worse = await RawUpstream(_hang_up).start()
    try:
        spec = replace(
            route("/x", bad.port),
            downstream_hosts=_hosts(bad.port, worse.port),
            ejection=EjectionSpec(consecutive_failures=2),
        )
        async with running(config(spec)) as gw:
            for _ in range(4):
                assert (await request(gw.port, "GET", "/x")).status == 502
            for _ in range(5):
                started = time.perf_counter()
                r = await request(gw.port, "GET", "/x")
                assert time.perf_counter() - started < 0.5
                assert r.status == 503
                assert r.body == envelope(
                    521, "UpstreamUnavailable", "No upstream host is available."
                )
            assert bad.requests == 2 and worse.requests == 2
            assert gw.stats.routes[0].responses[4] == 9
    finally:
        await bad.close()
        await worse.close()


async def test_a_routes_only_host_is_never_ejected_passively() -> None:
    """With nowhere else to go, a 503 for the whole cool-down would only hide that the host
    recovered (nginx ignores max_fails for a single server too): every request tries it."""
    bad = await RawUpstream(_hang_up).start()
    try:
        spec = replace(route("/x", bad.port), ejection=EjectionSpec(consecutive_failures=2))
        async with running(config(spec)) as gw:
            statuses = [(await request(gw.port, "GET", "/x")).status for _ in range(6)]
            assert statuses == [502] * 6
            assert bad.requests == 6
    finally:
        await bad.close()


async def test_5xx_answers_count_toward_ejection_and_a_success_resets_them() -> None:
    statuses = [500, 500, 200, 500, 500]
    up = await RecordingUpstream().start()

    async def answer(_request: object, _seen: object) -> object:
        from aiohttp import web

        return web.json_response({}, status=statuses.pop(0) if statuses else 500)

    up.handler = answer  # type: ignore[assignment]
    spare = await RecordingUpstream().start()
    try:
        spec = replace(
            route("/x", up.port),
            downstream_hosts=_hosts(up.port, spare.port),
            balancer=BalancerSpec(kind="first"),  # the spare only while the first is out
            ejection=EjectionSpec(consecutive_failures=3),
        )
        async with running(config(spec)) as gw:
            got = [(await request(gw.port, "GET", "/x")).status for _ in range(8)]
            # 500 500 200 (reset) 500 500 500 (third in a row: out), then the spare.
            assert got == [500, 500, 200, 500, 500, 500, 200, 200]
            assert len(up.seen) == 6 and len(spare.seen) == 2
    finally:
        await up.close()
        await spare.close()


async def test_a_killed_host_is_out_and_back_within_one_interval_after_restart() -> None:
    interval = 0.3
    a = await RecordingUpstream().start()
    b = await RecordingUpstream().start()
    port = a.port
    try:
        spec = replace(
            route("/x", b.port),
            downstream_hosts=_hosts(port, b.port),
            ejection=EjectionSpec(consecutive_failures=1, base=60.0),
            health_check=HealthCheckSpec(
                path="/health", interval=interval, timeout=0.2, unhealthy_threshold=1
            ),
        )
        async with running(config(spec)) as gw:
            await a.close()
            statuses = [(await request(gw.port, "GET", "/x")).status for _ in range(6)]
            # At most one request met the dead host before it was taken out.
            assert statuses.count(200) >= 5
            assert set(statuses) <= {200, 502}
            a = await RecordingUpstream().start(port)
            restarted = time.perf_counter()
            async with asyncio.timeout(interval + 1.0):
                while not any(s.path_qs == "/x" for s in a.seen):
                    await request(gw.port, "GET", "/x")
                    await asyncio.sleep(0.02)
            # Back well before the 60 s passive cool-down: the check brought it back.
            assert time.perf_counter() - restarted <= interval + 0.25
            assert any(s.path_qs == "/health" for s in a.seen)
    finally:
        await a.close()
        await b.close()
