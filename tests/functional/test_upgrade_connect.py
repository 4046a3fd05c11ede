"""Upgrade and CONNECT cannot desynchronise an upstream connection (security review, item 1).

llhttp ends a message at the head when it carries ``Connection: Upgrade`` + ``Upgrade`` or is
a CONNECT, whatever body length it announces. If the gateway still announced that length
upstream, the pooled connection would wait for body bytes that the *next* request's head
then supplies, and a body of the attacker's own would become a request the service serves.
"""

from __future__ import annotations

import asyncio

from tests.support.client import exchange_raw
from tests.support.framing import FramingUpstream
from tests.support.gateway import BEARER, config, route, running

SMUGGLED = b"GET /admin/users HTTP/1.1\r\nHost: svc\r\nUser: admin\r\nContent-Length: 0\r\n\r\n"


def _routes(port: int) -> tuple[object, ...]:
    return (
        route("/public/{x}", port, "/public/{x}"),
        route("/admin/{x}", port, "/admin/{x}", auth=BEARER),
    )


async def test_upgrade_with_a_body_length_is_refused_and_smuggles_nothing() -> None:
    upstream = await FramingUpstream(answer_early=True).start()
    try:
        async with running(config(*_routes(upstream.port))) as gw:  # type: ignore[arg-type]
            attack = (
                b"GET /public/ok HTTP/1.1\r\nHost: g\r\nConnection: Upgrade\r\nUpgrade: foo\r\n"
                b"Content-Length: %d\r\n\r\n" % (len(SMUGGLED) + 40)
            )
            responses, _raw, closed = await exchange_raw(gw.port, attack, timeout=2)
            assert [r.status for r in responses] == [501]
            assert closed
            # A victim's and the attacker's follow-up requests on fresh connections.
            body = b"x" * 40 + SMUGGLED
            follow = b"POST /public/form HTTP/1.1\r\nHost: g\r\nContent-Length: %d\r\n\r\n%s" % (
                len(body),
                body,
            )
            responses, _raw, _closed = await exchange_raw(gw.port, follow, timeout=2)
            assert [r.status for r in responses] == [200]
            await asyncio.sleep(0.1)
        assert [(r.method, r.target) for r in upstream.received] == [("POST", "/public/form")]
        assert upstream.received[0].body == body
        assert not any(r.target.startswith("/admin") for r in upstream.received)
        assert upstream.leftover == []
    finally:
        await upstream.close()


async def test_bodiless_upgrade_is_served_as_plain_http_without_the_upgrade() -> None:
    upstream = await FramingUpstream().start()
    try:
        async with running(config(*_routes(upstream.port))) as gw:  # type: ignore[arg-type]
            data = (
                b"GET /public/ws HTTP/1.1\r\nHost: g\r\n"
                b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                b"GET /public/next HTTP/1.1\r\nHost: g\r\n\r\n"
            )
            responses, _raw, _closed = await exchange_raw(gw.port, data, expect=2, timeout=2)
        assert [r.status for r in responses] == [200, 200]
        assert [r.target for r in upstream.received] == ["/public/ws", "/public/next"]
        first = upstream.received[0]
        assert first.header("Upgrade") is None
        assert "upgrade" not in (first.header("Connection") or "").lower()
        assert upstream.leftover == []
    finally:
        await upstream.close()


async def test_connect_is_refused_and_the_connection_closed() -> None:
    upstream = await FramingUpstream(answer_early=True).start()
    try:
        async with running(config(route("/{everything}", upstream.port))) as gw:
            data = (
                b"CONNECT upstream:443 HTTP/1.1\r\nHost: upstream:443\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(SMUGGLED), SMUGGLED)
            )
            responses, _raw, closed = await exchange_raw(gw.port, data, timeout=2)
        assert [r.status for r in responses] == [501]
        assert closed
        assert upstream.received == []
    finally:
        await upstream.close()


async def test_trace_is_refused_on_a_route_without_a_method_list() -> None:
    upstream = await FramingUpstream().start()
    try:
        async with running(config(route("/{everything}", upstream.port))) as gw:
            data = (
                b"TRACE /anything HTTP/1.1\r\nHost: g\r\n\r\n"
                b"PROPFIND /dav HTTP/1.1\r\nHost: g\r\n\r\n"
            )
            responses, _raw, _closed = await exchange_raw(gw.port, data, expect=2, timeout=2)
        # TRACE would echo the identity headers the gateway sets; WebDAV methods are ordinary.
        assert [r.status for r in responses] == [501, 200]
        assert [(r.method, r.target) for r in upstream.received] == [("PROPFIND", "/dav")]
    finally:
        await upstream.close()
