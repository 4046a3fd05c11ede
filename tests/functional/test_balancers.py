"""Balancers over real upstreams: Ocelot's four (its own test cases, ported) and propylon's.

Each upstream is a real HTTP server; which one answered is what the upstream saw.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from propylon.config.loader import load_config
from propylon.config.model import BalancerSpec, DownstreamHost, RouteSpec
from tests.support.client import request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RecordingUpstream, Seen


async def _upstreams(count: int) -> list[RecordingUpstream]:
    return [await RecordingUpstream().start() for _ in range(count)]


def _over(ups: list[RecordingUpstream], path: str = "/x", **kw: object) -> RouteSpec:
    spec = route(path, ups[0].port)
    hosts = tuple(DownstreamHost("127.0.0.1", u.port) for u in ups)
    return replace(spec, downstream_hosts=hosts, **kw)  # type: ignore[arg-type]


def _served(ups: list[RecordingUpstream]) -> list[int]:
    return [len(u.seen) for u in ups]


async def _close(ups: list[RecordingUpstream]) -> None:
    for u in ups:
        await u.close()


async def test_round_robin_is_the_default_and_starts_at_the_first_host() -> None:
    # Ocelot RoundRobinTests: Lease_LoopThroughIndexRangeOnce_ShouldGetNextAddress and
    # ..._ShouldGoBackToFirstAddressAfterFinishedLast.
    ups = await _upstreams(3)
    try:
        async with running(config(_over(ups))) as gw:
            order = []
            for _ in range(7):
                assert (await request(gw.port, "GET", "/x")).status == 200
                order.append(next(i for i, u in enumerate(ups) if len(u.seen) > order.count(i)))
            assert order == [0, 1, 2, 0, 1, 2, 0]
    finally:
        await _close(ups)


async def test_round_robin_under_concurrent_load_spreads_evenly() -> None:
    # Ocelot RoundRobinTests:
    # Lease_LoopThroughIndexRangeIndefinitelyUnderHighLoad_ShouldDistributeIndexValuesUniformly
    ups = await _upstreams(3)
    try:
        async with running(config(_over(ups))) as gw:
            replies = await asyncio.gather(*(request(gw.port, "GET", "/x") for _ in range(30)))
            assert {r.status for r in replies} == {200}
            assert _served(ups) == [10, 10, 10]
    finally:
        await _close(ups)


async def test_no_load_balancer_always_uses_the_first_host() -> None:
    # Ocelot NoLoadBalancerTests: the first service, every time.
    ups = await _upstreams(2)
    try:
        async with running(config(_over(ups, balancer=BalancerSpec(kind="first")))) as gw:
            for _ in range(5):
                assert (await request(gw.port, "GET", "/x")).status == 200
            assert _served(ups) == [5, 0]
    finally:
        await _close(ups)


ARRIVED = asyncio.Queue[None]


def _held(ups: list[RecordingUpstream]) -> tuple[asyncio.Event, ARRIVED]:
    """Make every upstream hold its answers until the returned event is set; each request
    that arrives puts an item on the returned queue."""
    release = asyncio.Event()
    arrived: ARRIVED = asyncio.Queue()

    async def hold(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        arrived.put_nowait(None)
        await release.wait()
        return web.json_response({})

    for u in ups:
        u.handler = hold
    return release, arrived


async def test_least_connection_serves_the_host_with_fewest_in_flight() -> None:
    # Ocelot LeastConnectionTests: Should_serve_from_service_with_least_connections (three
    # leases held: one per host, in order) and Should_release_connection (the host whose
    # request ended gets the next one).
    ups = await _upstreams(3)
    release, arrived = _held(ups)
    try:
        spec = _over(ups, balancer=BalancerSpec(kind="least_connection"))
        async with running(config(spec)) as gw:
            held = []
            for _ in range(4):
                held.append(asyncio.create_task(request(gw.port, "GET", "/x")))
                await asyncio.wait_for(arrived.get(), 5)
                if len(held) == 3:
                    assert _served(ups) == [1, 1, 1]
            # The fourth went to the first listed of the tied hosts.
            assert _served(ups) == [2, 1, 1]
            release.set()
            assert [r.status for r in await asyncio.gather(*held)] == [200] * 4
            # Everything released: all at 0 again, so the first host once more.
            ups[0].handler = ups[1].handler = ups[2].handler = None
            assert (await request(gw.port, "GET", "/x")).status == 200
            assert _served(ups) == [3, 1, 1]
    finally:
        release.set()
        await _close(ups)


def _ocelot(tmp_path: Path, data: object) -> object:
    path = tmp_path / "ocelot.json"
    path.write_text(json.dumps(data))
    return load_config(path, env={"PROPYLON_JWT_SECRET": "x" * 32})


def _sticky_route(ports: list[int], upstream: str, cookie: str | None) -> dict[str, object]:
    options: dict[str, object] = {"Type": "CookieStickySessions", "Expiry": 300_000}
    if cookie is not None:
        options["Key"] = cookie
    return {
        "UpstreamPathTemplate": upstream,
        "DownstreamPathTemplate": "/",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": p} for p in ports],
        "LoadBalancerOptions": options,
    }


async def test_sticky_sessions_keep_one_host_for_one_cookie_under_load(tmp_path: Path) -> None:
    # Ocelot acceptance CookieStickySessionsTests:
    # ShouldUseSameDownstreamHost_ForSingleRouteWithHighLoad
    ups = await _upstreams(2)
    try:
        cfg = _ocelot(tmp_path, {"Routes": [_sticky_route([u.port for u in ups], "/", "sid")]})
        async with running(cfg) as gw:  # type: ignore[arg-type]
            replies = await asyncio.gather(
                *(request(gw.port, "GET", "/", [("Cookie", "sid=abc")]) for _ in range(10))
            )
            assert {r.status for r in replies} == {200}
            assert _served(ups) == [10, 0]
    finally:
        await _close(ups)


async def test_sticky_routes_with_different_cookies_keep_their_own_sessions(
    tmp_path: Path,
) -> None:
    # ShouldUseDifferentDownstreamHost_ForDoubleRoutesWithDifferentCookies
    ups = await _upstreams(2)
    a, b = ups[0].port, ups[1].port
    try:
        cfg = _ocelot(
            tmp_path,
            {
                "Routes": [
                    _sticky_route([a, b], "/", "sid"),
                    _sticky_route([b, a], "/test", "sidbestid"),
                ]
            },
        )
        async with running(cfg) as gw:  # type: ignore[arg-type]
            assert (await request(gw.port, "GET", "/", [("Cookie", "sid=123")])).status == 200
            r = await request(gw.port, "GET", "/test", [("Cookie", "sidbestid=123")])
            assert r.status == 200
            assert _served(ups) == [1, 1]
    finally:
        await _close(ups)


async def test_routes_with_the_same_cookie_share_one_session_table(tmp_path: Path) -> None:
    # ShouldUseSameDownstreamHost_ForDifferentRoutesWithSameCookie: the second route lists
    # the hosts the other way round, and still goes where the session says.
    ups = await _upstreams(2)
    a, b = ups[0].port, ups[1].port
    try:
        cfg = _ocelot(
            tmp_path,
            {"Routes": [_sticky_route([a, b], "/", "sid"), _sticky_route([b, a], "/test", "sid")]},
        )
        async with running(cfg) as gw:  # type: ignore[arg-type]
            for path in ("/", "/test"):
                r = await request(gw.port, "GET", path, [("Cookie", "other=1; sid=123")])
                assert r.status == 200
            assert _served(ups) == [2, 0]
            # Another session: the shared round robin goes on to the next position.
            r = await request(gw.port, "GET", "/", [("Cookie", "sid=456")])
            assert r.status == 200
            assert _served(ups) == [2, 1]
    finally:
        await _close(ups)


async def test_global_sticky_options_apply_to_routes_without_their_own(tmp_path: Path) -> None:
    # ShouldUseGlobalOptions_ForStaticRoutes: routes without options take the global
    # cookie; a route with its own cookie keeps it; a NoLoadBalancer route stays so.
    ups = await _upstreams(5)
    p = [u.port for u in ups]
    try:
        first = _sticky_route([p[0], p[1]], "/", None)
        first["LoadBalancerOptions"] = {}
        second = _sticky_route([p[1], p[0]], "/test", None)
        second["LoadBalancerOptions"] = {}
        third = _sticky_route([p[2], p[3]], "/nextSticky", "g-nextSticky")
        fourth = _sticky_route([p[4]], "/noLoadBalancing", None)
        fourth["LoadBalancerOptions"] = {"Type": "NoLoadBalancer"}
        cfg = _ocelot(
            tmp_path,
            {
                "Routes": [first, second, third, fourth],
                "GlobalConfiguration": {
                    "LoadBalancerOptions": {"Type": "CookieStickySessions", "Key": "g"}
                },
            },
        )
        async with running(cfg) as gw:  # type: ignore[arg-type]
            for path in ("/", "/test"):
                assert (await request(gw.port, "GET", path, [("Cookie", "g=123")])).status == 200
            await asyncio.gather(
                *(
                    request(gw.port, "GET", "/nextSticky", [("Cookie", "g-nextSticky=333")])
                    for _ in range(5)
                )
            )
            await asyncio.gather(
                *(
                    request(gw.port, "GET", "/noLoadBalancing", [("Cookie", "x=y")])
                    for _ in range(7)
                )
            )
            assert _served(ups) == [2, 0, 5, 0, 7]
    finally:
        await _close(ups)


async def test_weighted_round_robin_interleaves_by_weight() -> None:
    ups = await _upstreams(2)
    try:
        spec = _over(ups, balancer=BalancerSpec(kind="weighted_round_robin", weights=(3, 1)))
        async with running(config(spec)) as gw:
            order = []
            for _ in range(8):
                before = _served(ups)
                assert (await request(gw.port, "GET", "/x")).status == 200
                order.append(0 if _served(ups)[0] > before[0] else 1)
            assert order == [0, 0, 1, 0, 0, 0, 1, 0]
    finally:
        await _close(ups)


async def test_power_of_two_sends_little_to_a_slow_host() -> None:
    ups = await _upstreams(2)

    async def slow(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        await asyncio.sleep(0.1)
        return web.json_response({})

    ups[1].handler = slow
    try:
        spec = _over(ups, balancer=BalancerSpec(kind="power_of_two"))
        async with running(config(spec)) as gw:

            async def client() -> None:
                for _ in range(10):
                    assert (await request(gw.port, "GET", "/x")).status == 200

            await asyncio.gather(*(client() for _ in range(8)))
            fast, slow_count = _served(ups)
            assert fast + slow_count == 80
            # Each client waits on a slow answer at most once per pick that lands there;
            # with 8 in flight the slow host is nearly always the busier of the two.
            assert slow_count <= 16, _served(ups)
    finally:
        await _close(ups)


async def test_hash_on_a_header_keeps_each_value_on_one_host() -> None:
    ups = await _upstreams(3)
    try:
        spec = _over(ups, balancer=BalancerSpec(kind="hash", hash_on="header", key="X-Tenant"))
        async with running(config(spec)) as gw:
            homes: dict[str, set[int]] = {}
            for tenant in [f"t{n}" for n in range(30)] * 2:
                before = _served(ups)
                r = await request(gw.port, "GET", "/x", [("X-Tenant", tenant)])
                assert r.status == 200
                after = _served(ups)
                homes.setdefault(tenant, set()).add(
                    next(i for i in range(3) if after[i] > before[i])
                )
            assert all(len(h) == 1 for h in homes.values())
            assert {next(iter(h)) for h in homes.values()} == {0, 1, 2}
            # Without the header: round robin.
            before = _served(ups)
            for _ in range(3):
                assert (await request(gw.port, "GET", "/x")).status == 200
            assert [a - b for a, b in zip(_served(ups), before, strict=True)] == [1, 1, 1]
    finally:
        await _close(ups)
