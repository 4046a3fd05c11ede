"""What the upstream receives and what the client gets back, for ordinary traffic."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from propylon.config.model import DownstreamHost, Limits
from tests.support.client import exchange_raw, request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RecordingUpstream, Seen


async def test_placeholders_catch_all_and_query_reach_the_downstream_template() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/api/v1/users/{id}/orders/{order}", up.port, "/users/{id}/o/{order}"),
            route("/files/{everything}", up.port, "/storage/{everything}"),
        )
        async with running(cfg) as gw:
            r = await request(gw.port, "GET", "/api/v1/users/42/orders/7?expand=items&x=%20y")
            assert r.status == 200
            assert up.last.path_qs == "/users/42/o/7?expand=items&x=%20y"
            r = await request(gw.port, "GET", "/files/a/b/c.txt")
            assert up.last.raw_path == "/storage/a/b/c.txt"
    finally:
        await up.close()


async def test_hop_by_hop_and_connection_listed_headers_are_dropped_both_ways() -> None:
    async def answer(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        return web.Response(
            text="{}",
            content_type="application/json",
            headers={"X-Secret-Hop": "1", "Connection": "X-Secret-Hop", "X-Kept": "yes"},
        )

    up = await RecordingUpstream(handler=answer).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            r = await request(
                gw.port,
                "GET",
                "/x",
                [
                    ("Connection", "keep-alive, X-Strip-Me"),
                    ("X-Strip-Me", "secret"),
                    ("Keep-Alive", "timeout=5"),
                    ("TE", "trailers"),
                    ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
                    ("Upgrade", "h2c"),
                    ("X-End-To-End", "kept"),
                ],
            )
            assert r.status == 200
            seen = up.last
            for name in ("X-Strip-Me", "Keep-Alive", "TE", "Proxy-Authorization", "Upgrade"):
                assert seen.header(name) is None, name
            assert seen.header("X-End-To-End") == "kept"
            assert r.header("X-Secret-Hop") is None
            assert r.header("X-Kept") == "yes"
    finally:
        await up.close()


async def test_forwarded_headers_host_and_request_id() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            r = await request(
                gw.port, "GET", "/x", [("X-Forwarded-For", "6.6.6.6")], host="api.example"
            )
            seen = up.last
            # An untrusted client cannot extend the chain: it is replaced by the peer.
            assert seen.header("X-Forwarded-For") == "127.0.0.1"
            assert seen.header("X-Forwarded-Host") == "api.example"
            assert seen.header("X-Forwarded-Proto") == "http"
            assert seen.header("Host") == f"127.0.0.1:{up.port}"
            rid = seen.header("X-Request-Id")
            assert rid and len(rid) == 32
            assert r.header("X-Request-Id") == rid
            # A sane client id is kept and echoed; a hostile one is replaced.
            r = await request(gw.port, "GET", "/x", [("X-Request-Id", "abc-123")])
            assert up.last.header("X-Request-Id") == "abc-123" == r.header("X-Request-Id")
            r = await request(gw.port, "GET", "/x", [("X-Request-Id", "a b")])
            assert up.last.header("X-Request-Id") != "a b"
    finally:
        await up.close()


async def test_trusted_proxy_chain_is_extended() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port), trusted_proxies=("127.0.0.0/8",))
        async with running(cfg) as gw:
            await request(gw.port, "GET", "/x", [("X-Forwarded-For", "203.0.113.9")])
            assert up.last.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1"
    finally:
        await up.close()


async def test_keep_alive_pool_reuses_upstream_connections() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            head = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"
            responses, _raw, closed = await exchange_raw(gw.port, head * 20, expect=20)
            assert [r.status for r in responses] == [200] * 20
            assert not closed
            pool = next(iter(gw.pools.values()))
            # Pipelined requests are served one at a time: one upstream connection suffices.
            assert len(pool._idle) == 1
    finally:
        await up.close()


async def test_round_robin_over_downstream_hosts() -> None:
    a = await RecordingUpstream().start()
    b = await RecordingUpstream().start()
    try:
        spec = route("/x", a.port)
        spec = spec.__class__(
            **{
                **{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                "downstream_hosts": (
                    DownstreamHost("127.0.0.1", a.port),
                    DownstreamHost("127.0.0.1", b.port),
                ),
            }
        )
        async with running(config(spec)) as gw:
            for _ in range(6):
                assert (await request(gw.port, "GET", "/x")).status == 200
            assert len(a.seen) == 3 and len(b.seen) == 3
    finally:
        await a.close()
        await b.close()


async def test_large_bodies_stream_intact_both_ways() -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)

    async def echo_big(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        return web.Response(body=payload, content_type="application/octet-stream")

    up = await RecordingUpstream(handler=echo_big).start()
    try:
        async with running(config(route("/up", up.port))) as gw:
            r = await request(gw.port, "POST", "/up", body=payload, timeout=20)
            assert r.status == 200
            assert up.last.body_len == len(payload)
            assert up.last.body_sha256 == hashlib.sha256(payload).hexdigest()
            assert up.last.header("Content-Length") == str(len(payload))
            assert hashlib.sha256(r.body).digest() == hashlib.sha256(payload).digest()
    finally:
        await up.close()


async def test_chunked_request_is_reframed_and_chunked_response_passes() -> None:
    async def stream(request: web.Request, _seen: Seen) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"alpha-", b"beta-", b"gamma"):
            await resp.write(part)
        await resp.write_eof()
        return resp

    up = await RecordingUpstream(handler=stream).start()
    try:
        async with running(config(route("/c", up.port))) as gw:
            data = (
                b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
            )
            responses, _raw, _closed = await exchange_raw(gw.port, data)
            assert responses[0].status == 200
            assert responses[0].body == b"alpha-beta-gamma"
            assert responses[0].header("Transfer-Encoding") == "chunked"
            assert up.last.body == b"hello world"
            assert up.last.header("Transfer-Encoding") == "chunked"
    finally:
        await up.close()


async def test_head_204_304_have_no_body_and_connection_is_reused() -> None:
    async def answer(request: web.Request, _seen: Seen) -> web.StreamResponse:
        if request.path == "/204":
            return web.Response(status=204)
        if request.path == "/304":
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(body=b"x" * 1000, content_type="text/plain")

    up = await RecordingUpstream(handler=answer).start()
    try:
        async with running(config(route("/{everything}", up.port, "/{everything}"))) as gw:
            data = (
                b"HEAD /page HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /204 HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /304 HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /page HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(data)
            raw = b""
            while raw.count(b"HTTP/1.1 ") < 4 or not raw.endswith(b"x" * 1000):
                chunk = await asyncio.wait_for(reader.read(65536), 5)
                assert chunk, raw
                raw += chunk
            writer.close()
            parts = raw.split(b"HTTP/1.1 ")[1:]
            assert parts[0].startswith(b"200") and b"Content-Length: 1000" in parts[0]
            assert parts[0].endswith(b"\r\n\r\n")  # HEAD: no body bytes follow the head
            assert parts[1].startswith(b"204") and parts[1].endswith(b"\r\n\r\n")
            assert parts[2].startswith(b"304") and parts[2].endswith(b"\r\n\r\n")
            assert parts[3].startswith(b"200") and parts[3].endswith(b"x" * 1000)
    finally:
        await up.close()


async def test_expect_100_continue_is_answered_by_the_gateway() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(
                b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
            )
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert interim.startswith(b"HTTP/1.1 100 Continue")
            writer.write(b"hello")
            final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert final.startswith(b"HTTP/1.1 200")
            writer.close()
            assert up.last.body == b"hello"
            assert up.last.header("Expect") is None
    finally:
        await up.close()


async def test_http10_client_gets_close_delimited_or_keep_alive_right() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            responses, _raw, closed = await exchange_raw(gw.port, b"GET /x HTTP/1.0\r\n\r\n")
            assert responses[0].status == 200
            assert closed
            responses, _raw, closed = await exchange_raw(
                gw.port, b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            )
            assert responses[0].header("Connection") == "keep-alive"
            assert not closed
    finally:
        await up.close()


async def test_body_limit_gives_413_without_reaching_upstream() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port), limits=Limits(max_body_bytes=1000))
        async with running(cfg) as gw:
            r = await request(gw.port, "POST", "/x", body=b"a" * 1001)
            assert r.status == 413
            assert r.json()["codemessage"] == "PayloadTooLarge"  # type: ignore[index]
            chunked = (
                b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                + (b"200\r\n" + b"b" * 512 + b"\r\n") * 3
                + b"0\r\n\r\n"
            )
            responses, _raw, closed = await exchange_raw(gw.port, chunked)
            assert responses[0].status == 413 and closed
            assert all(s.body_len <= 1000 for s in up.seen)
            assert not any(s.body_len == 1001 for s in up.seen)
    finally:
        await up.close()


async def test_fragment_never_reaches_the_upstream() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            r = await request(gw.port, "GET", "/x?a=1#frag")
            assert r.status == 200
            assert up.last.path_qs == "/x?a=1"
            r = await request(gw.port, "GET", "/x#frag?b=2")
            assert r.status == 200
            assert up.last.path_qs == "/x"
    finally:
        await up.close()


@asynccontextmanager
async def host_routed() -> AsyncIterator[tuple[RecordingUpstream, RecordingUpstream, int]]:
    """A gateway with two routes on /x/{id}: Host a.example goes to upstream a (/a/{id}),
    any other host to upstream b (/b/{id}). Yields a, b and the gateway's port."""
    a = await RecordingUpstream().start()
    b = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/x/{id}", a.port, "/a/{id}", upstream_host="a.example"),
            route("/x/{id}", b.port, "/b/{id}"),
        )
        async with running(cfg) as gw:
            yield a, b, gw.port
    finally:
        await a.close()
        await b.close()


async def test_repeated_targets_route_the_same_and_hosts_are_respected() -> None:
    """The decision cache must give the same answers as routing afresh."""
    async with host_routed() as (a, b, port):
        for _ in range(3):
            await request(port, "GET", "/x/1", host="a.example")
            assert a.last.path_qs == "/a/1"
            await request(port, "GET", "/x/1", host="other.example")
            assert b.last.path_qs == "/b/1"
        assert len(a.seen) == 3 and len(b.seen) == 3


@pytest.mark.parametrize(
    ("target", "served_by", "path_qs"),
    [
        ("http://a.example/x/1", "a", "/a/1"),  # no port, no query
        ("HTTP://A.EXAMPLE/x/1?q=1", "a", "/a/1?q=1"),
        ("http://b.example/x/1", "b", "/b/1"),
    ],
)
async def test_absolute_form_targets_route_on_their_host_and_path(
    target: str, served_by: str, path_qs: str
) -> None:
    """RFC 9112 s.3.2.2: an absolute-form target's authority replaces Host, and a target
    without a port, a path or a query is as good as one with them."""
    async with host_routed() as (a, b, port):
        r = await request(port, "GET", target, host="a.example")
        assert r.status == 200
        assert ({"a": a, "b": b}[served_by]).last.path_qs == path_qs
        assert len(a.seen) + len(b.seen) == 1


@pytest.mark.parametrize(
    "target", ["http://a.example:80", "http://a.example", "http://a.example:8080/"]
)
async def test_absolute_form_target_without_a_path_is_the_root(target: str) -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/", up.port))) as gw:
            r = await request(gw.port, "GET", target)
            assert r.status == 200
            assert up.last.path_qs == "/"
    finally:
        await up.close()


async def test_each_query_parameter_reaches_the_upstream_once() -> None:
    """Issue 11 item 6, Ocelot's RoutingWithQueryStringTests ::
    Should_map_when_query_parameters_has_same_names_with_placeholder (bug 2002): the parameter
    a whole-item query placeholder carries into the downstream query is not appended a second
    time, and the parameters named like a placeholder are dropped."""
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route(
                "/WeatherForecast/{roleid}/groups?username={username}&groupName={groupName}"
                "&{everything}",
                up.port,
                "/account/{username}/groups/{groupName}/roles?roleId={roleid}&{everything}",
            )
        )
        async with running(cfg) as gw:
            r = await request(
                gw.port,
                "GET",
                "/WeatherForecast/123456/groups?username=bbenameur&groupName=Paris"
                "&something=9874565",
            )
            assert r.status == 200
            assert up.last.raw_path == (
                "/account/bbenameur/groups/Paris/roles?roleId=123456&something=9874565"
            )
            r = await request(
                gw.port,
                "GET",
                "/WeatherForecast/1/groups?username=u&groupName=g&a=1&b=%2F&a=2&flag",
            )
            assert r.status == 200
            assert up.last.raw_path == "/account/u/groups/g/roles?roleId=1&a=1&b=%2F&a=2&flag"
            # The carried parameter cannot add a second roleId next to the template's.
            r = await request(
                gw.port, "GET", "/WeatherForecast/1/groups?username=u&groupName=g&roleId=evil"
            )
            assert r.status == 200
            assert up.last.raw_path == "/account/u/groups/g/roles?roleId=1"
    finally:
        await up.close()


async def test_query_parameters_named_like_a_placeholder_are_removed() -> None:
    """Ocelot's RoutingWithQueryStringTests ::
    Should_not_corrupt_query_parameter_names_containing_id_when_route_has_id_placeholder
    (PR 2351): without a query in the downstream template, a parameter named like any
    placeholder (in any letter case) is removed; the others go as the client sent them."""
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/finance/v1/items/{id}/{oid}", up.port, "/v1/items/{oid}/{id}"))
        async with running(cfg) as gw:
            r = await request(
                gw.port, "GET", "/finance/v1/items/1/2?ID=3&customer_id=4&oid=5&x=%3a+y"
            )
            assert r.status == 200
            assert up.last.raw_path == "/v1/items/2/1?customer_id=4&x=%3a+y"
    finally:
        await up.close()
