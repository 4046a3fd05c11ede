"""Native rate limits through a real gateway on real sockets: exactness under concurrency,
GCRA refill, the IETF RateLimit headers, identity keys, and X-Forwarded-For spoofing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from propylon.config.loader import load_config
from propylon.config.model import GatewayConfig
from tests.support.client import Response, request
from tests.support.gateway import SECRET, config, route, running, token
from tests.support.upstreams import RecordingUpstream


def native(tmp_path: Path, port: int, text: str) -> GatewayConfig:
    path = tmp_path / "propylon.yaml"
    path.write_text(text.replace("PORT", str(port)))
    return load_config(str(path), env={})


async def burst(
    port: int, count: int, path: str = "/a", headers: list[tuple[str, str]] | None = None
) -> list[Response]:
    return list(
        await asyncio.gather(
            *(request(port, "GET", path, headers, timeout=20) for _ in range(count))
        )
    )


async def test_a_thousand_concurrent_requests_against_100_admit_exactly_100(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = native(
            tmp_path,
            up.port,
            "propylon: 1\nroutes:\n- path: /a\n  downstream: {hosts: ['127.0.0.1:PORT']}\n"
            "  rate_limits: [{limit: 100, per: 1h, key: [ip]}]\n",
        )
        async with running(cfg) as gw:
            answers = await burst(gw.port, 1000)
        statuses = [a.status for a in answers]
        assert statuses.count(200) == 100 and statuses.count(429) == 900
        assert len(up.seen) == 100
    finally:
        await up.close()


async def test_policy_and_limit_headers_on_admitted_and_refused_answers(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = native(
            tmp_path,
            up.port,
            "propylon: 1\nroutes:\n- path: /a\n  downstream: {hosts: ['127.0.0.1:PORT']}\n"
            "  rate_limits:\n  - {name: burst, limit: 2, per: 10s, key: ip}\n"
            "  - {name: hourly, limit: 100, per: 1h, key: [ip]}\n",
        )
        async with running(cfg) as gw:
            first = await request(gw.port, "GET", "/a")
            second = await request(gw.port, "GET", "/a")
            refused = await request(gw.port, "GET", "/a")
        policy = '"burst";q=2;w=10, "hourly";q=100;w=3600'
        assert first.header("RateLimit-Policy") == policy
        assert first.header("RateLimit") == '"burst";r=1;t=5, "hourly";r=99;t=36'
        # t: seconds until one more request is allowed, not until the bucket is full
        assert second.header("RateLimit") == '"burst";r=0;t=5, "hourly";r=98;t=36'
        assert refused.status == 429
        assert refused.json() == {
            "code": 427,
            "codemessage": "RateLimited",
            "message": "Too many requests: a rate limit of this route is exhausted.",
        }
        assert refused.header("RateLimit-Policy") == policy
        # A refused request counts against no limit: the hourly one still has 98.
        assert refused.header("RateLimit") == '"burst";r=0;t=5, "hourly";r=98;t=36'
        assert refused.header("Retry-After") == "5"
        assert len(up.seen) == 2
    finally:
        await up.close()


async def test_the_bucket_refills_one_request_per_interval(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = native(
            tmp_path,
            up.port,
            "propylon: 1\nroutes:\n- path: /a\n  downstream: {hosts: ['127.0.0.1:PORT']}\n"
            "  rate_limits: [{limit: 4, per: 400ms}]\n",
        )
        async with running(cfg) as gw:
            statuses = [a.status for a in await burst(gw.port, 6)]
            await asyncio.sleep(0.12)  # one interval (100 ms): room for exactly one more
            one_more = [a.status for a in await burst(gw.port, 2)]
            await asyncio.sleep(0.45)  # the whole window: full again
            full = [a.status for a in await burst(gw.port, 5)]
        assert sorted(statuses) == [200] * 4 + [429] * 2
        assert sorted(one_more) == [200, 429]
        assert sorted(full) == [200] * 4 + [429]
    finally:
        await up.close()


async def test_limits_keyed_by_sub_count_each_caller_apart(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = native(
            tmp_path,
            up.port,
            f"propylon: 1\nauth_providers: {{Bearer: {{secret: {SECRET.decode()}}}}}\n"
            "routes:\n- path: /a\n  downstream: {hosts: ['127.0.0.1:PORT']}\n"
            "  auth: {providers: [Bearer]}\n"
            "  rate_limits: [{limit: 2, per: 1h, key: [sub]}]\n",
        )
        alice = [("Authorization", f"Bearer {token('alice')}")]
        bob = [("Authorization", f"Bearer {token('bob')}")]
        async with running(cfg) as gw:
            a = [(await request(gw.port, "GET", "/a", alice)).status for _ in range(3)]
            b = [(await request(gw.port, "GET", "/a", bob)).status for _ in range(3)]
            anonymous = await request(gw.port, "GET", "/a")
        assert a == [200, 200, 429] and b == [200, 200, 429]
        # Authentication runs first: no token is 401, and it uses nobody's quota.
        assert anonymous.status == 401
        assert [s.header("User") for s in up.seen] == ["alice", "alice", "bob", "bob"]
    finally:
        await up.close()


async def test_gateway_wide_defaults_count_across_routes_unless_keyed_by_route(
    tmp_path: Path,
) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = native(
            tmp_path,
            up.port,
            "propylon: 1\nrate_limits: [{limit: 2, per: 1h, key: [ip]}]\nroutes:\n"
            "- {path: /a, downstream: {hosts: ['127.0.0.1:PORT']}}\n"
            "- {path: /b, downstream: {hosts: ['127.0.0.1:PORT']}}\n"
            "- {path: /free, downstream: {hosts: ['127.0.0.1:PORT']}, rate_limits: []}\n",
        )
        async with running(cfg) as gw:
            statuses = [(await request(gw.port, "GET", p)).status for p in ("/a", "/b", "/a")]
            free = [(await request(gw.port, "GET", "/free")).status for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert free == [200, 200, 200]
    finally:
        await up.close()


async def test_a_spoofed_forwarded_for_buys_nothing_unless_the_peer_is_trusted(
    tmp_path: Path,
) -> None:
    up = await RecordingUpstream().start()
    try:
        text = (
            "propylon: 1\nTRUST\nroutes:\n- path: /a\n  downstream: {hosts: ['127.0.0.1:PORT']}\n"
            "  rate_limits: [{limit: 2, per: 1h, key: [ip]}]\n"
        )
        untrusted = native(tmp_path, up.port, text.replace("TRUST\n", ""))
        async with running(untrusted) as gw:
            statuses = [
                (await request(gw.port, "GET", "/a", [("X-Forwarded-For", f"10.0.0.{i}")])).status
                for i in range(4)
            ]
        assert statuses == [200, 200, 429, 429]
        trusted = native(
            tmp_path, up.port, text.replace("TRUST", "trusted_proxies: [127.0.0.1/32]")
        )
        async with running(trusted) as gw:
            statuses = [
                (
                    await request(gw.port, "GET", "/a", [("X-Forwarded-For", f"10.0.0.{i % 2}")])
                ).status
                for i in range(6)
            ]
        # Behind a trusted proxy each forwarded client has its own bucket of 2.
        assert statuses == [200, 200, 200, 200, 429, 429]
    finally:
        await up.close()


async def test_a_header_key_shares_one_bucket_among_requests_without_it(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = native(
            tmp_path,
            up.port,
            "propylon: 1\nroutes:\n- path: /a\n  downstream: {hosts: ['127.0.0.1:PORT']}\n"
            "  rate_limits: [{limit: 1, per: 1h, key: ['header:X-Api-Key']}]\n",
        )
        async with running(cfg) as gw:
            k1 = [
                (await request(gw.port, "GET", "/a", [("X-Api-Key", "k1")])).status
                for _ in range(2)
            ]
            k2 = (await request(gw.port, "GET", "/a", [("x-api-key", "k2")])).status
            none = [(await request(gw.port, "GET", "/a")).status for _ in range(2)]
        assert k1 == [200, 429] and k2 == 200 and none == [200, 429]
    finally:
        await up.close()


async def test_rate_limit_headers_ride_on_proxied_error_answers_too(tmp_path: Path) -> None:
    # The upstream's own 404 is proxied: the client still learns its quota.
    up = await RecordingUpstream().start()
    try:
        from aiohttp import web

        async def not_found(_request: web.Request, _seen: object) -> web.StreamResponse:
            return web.json_response({"missing": True}, status=404)

        up.handler = not_found
        spec = replace(route("/a", up.port), rate_limits=())
        base = config(spec)
        cfg = native(
            tmp_path,
            up.port,
            "propylon: 1\nroutes:\n- path: /a\n  downstream: {hosts: ['127.0.0.1:PORT']}\n"
            "  rate_limits: [{limit: 5, per: 1m}]\n",
        )
        assert base.routes[0].rate_limits == ()
        async with running(cfg) as gw:
            answer = await request(gw.port, "GET", "/a")
        assert answer.status == 404
        assert answer.header("RateLimit") == '"5-per-1m";r=4;t=12'
    finally:
        await up.close()
