"""Query delimiters, double encoding and the Host header (security review, items 8 and 9)."""

from __future__ import annotations

from propylon.config.model import ForwardingPolicy
from tests.support.client import exchange_raw, request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RecordingUpstream


async def test_a_path_value_cannot_add_a_query_parameter() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/q/{id}", up.port, "/query?id={id}&fixed=1"))) as gw:
            r = await request(gw.port, "GET", "/q/a;admin=1")
            assert r.status == 200
        assert up.last.path_qs == "/query?id=a%3Badmin%3D1&fixed=1"
    finally:
        await up.close()


async def test_double_encoded_dots_and_slashes_are_refused_by_default() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/files/{everything}", up.port))) as gw:
            for target in ("/files/%252e%252e/secret", "/files/a%252fb", "/files/a%255Cb"):
                r = await request(gw.port, "GET", target)
                assert r.status == 400, target
            assert up.seen == []
        lenient = config(
            route("/files/{everything}", up.port),
            forwarding=ForwardingPolicy(allow_double_encoding=True),
        )
        async with running(lenient) as gw:
            r = await request(gw.port, "GET", "/files/a%252fb")
            assert r.status == 200
        assert up.last.raw_path == "/files/a%252fb"
    finally:
        await up.close()


async def test_a_host_that_is_not_host_port_is_a_400_and_reaches_nobody() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            for host in (b"a\xff\xfeb c", b"evil.com/path", b"[::1", b"h:99999"):
                responses, _raw, _closed = await exchange_raw(
                    gw.port, b"GET /x HTTP/1.1\r\nHost: %s\r\n\r\n" % host
                )
                assert [r.status for r in responses] == [400], host
            assert up.seen == []
    finally:
        await up.close()


async def test_absolute_form_ipv6_keeps_its_brackets() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            responses, _raw, _closed = await exchange_raw(
                gw.port, b"GET http://[::1]:8080/x HTTP/1.1\r\nHost: ignored\r\n\r\n"
            )
            assert [r.status for r in responses] == [200]
        assert up.last.header("X-Forwarded-Host") == "[::1]:8080"
    finally:
        await up.close()


async def test_a_trailing_dot_matches_the_upstream_host() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port, upstream_host="api.example.com"))
        async with running(cfg) as gw:
            r = await request(gw.port, "GET", "/x", host="api.example.com.")
            assert r.status == 200
            assert up.last.header("X-Forwarded-Host") == "api.example.com"
            r = await request(gw.port, "GET", "/x", host="other.example.com")
            assert r.status == 404
    finally:
        await up.close()
