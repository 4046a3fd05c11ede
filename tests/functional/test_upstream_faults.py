"""Upstream faults (design.md s.4): refused, hung, malformed, truncated."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from dataclasses import replace

import pytest

from propylon.config.model import DownstreamHost
from propylon.errors import envelope
from tests.support.client import exchange_raw, request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RawUpstream, free_port, read_head


def _no_internals(body: bytes, port: int) -> None:
    text = body.decode()
    assert "127.0.0.1" not in text and str(port) not in text
    assert "Traceback" not in text and "Error" not in text.replace("UpstreamTimeout", "")


async def test_refused_upstream_is_502_envelope() -> None:
    port = free_port()
    async with running(config(route("/x", port))) as gw:
        r = await request(gw.port, "GET", "/x")
        assert r.status == 502
        assert r.body == envelope(
            521, "UpstreamUnavailable", "The upstream service is unavailable."
        )
        _no_internals(r.body, port)
        assert gw.stats.upstreams[f"127.0.0.1:{port}"].errors == 1


async def test_hung_upstream_is_504_after_the_route_timeout() -> None:
    async def hang(reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(10)

    up = await RawUpstream(hang).start()
    try:
        async with running(config(route("/x", up.port, timeout=0.5))) as gw:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            r = await request(gw.port, "GET", "/x")
            elapsed = loop.time() - t0
            assert r.status == 504
            assert r.json()["codemessage"] == "UpstreamTimeout"  # type: ignore[index]
            assert 0.4 < elapsed < 3
            _no_internals(r.body, up.port)
    finally:
        await up.close()


async def test_malformed_upstream_response_is_502() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 2OO NOT OK\r\nContent-Length: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    up = await RawUpstream(garbage).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            r = await request(gw.port, "GET", "/x")
            assert r.status == 502
            _no_internals(r.body, up.port)
    finally:
        await up.close()


async def test_upstream_closing_before_answering_is_502() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.transport.abort()

    up = await RawUpstream(hang_up).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            r = await request(gw.port, "POST", "/x", body=b"{}")
            assert r.status == 502
    finally:
        await up.close()


async def test_truncated_body_cuts_the_client_connection() -> None:
    async def truncate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 400)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    up = await RawUpstream(truncate).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            responses, raw, closed = await exchange_raw(
                gw.port, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            assert raw.startswith(b"HTTP/1.1 200")
            assert closed
            # The client saw a head promising 1000 bytes and fewer arrived: never "complete".
            assert not any(r.complete for r in responses)
            assert gw.stats.routes[0].upstream_errors == 1
    finally:
        await up.close()


async def test_truncated_chunked_body_has_no_terminating_chunk() -> None:
    async def truncate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    up = await RawUpstream(truncate).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            responses, raw, closed = await exchange_raw(
                gw.port, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            assert closed and b"hello" in raw
            assert not raw.endswith(b"0\r\n\r\n")
            assert not any(r.complete for r in responses)
    finally:
        await up.close()


async def test_close_delimited_upstream_body_is_rechunked_complete() -> None:
    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close")
        await writer.drain()

    up = await RawUpstream(http10).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            responses, _raw, _closed = await exchange_raw(
                gw.port, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            assert responses[0].complete and responses[0].body == b"until-close"
            assert responses[0].header("Transfer-Encoding") == "chunked"
    finally:
        await up.close()


async def test_stale_pooled_connection_is_retried_for_idempotent_requests() -> None:
    """Each upstream connection answers once, then drops the next request unanswered: the race
    of a keep-alive connection closed by the upstream just as the gateway reuses it."""

    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_head(reader)
        writer.transport.abort()

    up = await RawUpstream(one_shot).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            for _ in range(3):
                r = await request(gw.port, "GET", "/x")
                assert r.status == 200 and r.body == b"ok"
            # A POST is not idempotent: it is never sent twice, the client gets the 502.
            r = await request(gw.port, "POST", "/x", body=b"{}")
            assert r.status in (200, 502)
            assert up.requests >= 3
    finally:
        await up.close()


async def test_reset_during_a_close_delimited_body_aborts_the_client_response() -> None:
    """Security review item 6: a reset is not the end of a close-delimited body."""

    async def reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial-body")
        await writer.drain()
        await asyncio.sleep(0.1)
        sock = writer.get_extra_info("socket")
        # SO_LINGER 0: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    up = await RawUpstream(reset_mid_body).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            responses, raw, closed = await exchange_raw(
                gw.port, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n", timeout=3
            )
            assert b"partial-body" in raw
            assert not raw.endswith(b"0\r\n\r\n")  # no terminating chunk
            assert closed
            assert not any(r.complete for r in responses)
            assert gw.stats.upstreams[f"127.0.0.1:{up.port}"].errors == 1
    finally:
        await up.close()


async def test_an_upstream_101_is_a_bad_response_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Security review item 11: the gateway never asks for an upgrade, so a 101 is a 502,
    handled: it used to escape the upstream protocol as HttpParserUpgrade, which the loop
    logged with its traceback as "Fatal error on transport"."""
    caplog.set_level(logging.DEBUG)  # every logger: the loop's own ("asyncio") too

    async def switching(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await read_head(reader)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.5)

    up = await RawUpstream(switching).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            assert (await request(gw.port, "GET", "/x")).status == 200
            # The 101 comes on a reused connection, where a reset would be retried.
            r = await request(gw.port, "GET", "/x")
            assert r.status == 502
            assert r.json() == {
                "code": 523,
                "codemessage": "BadUpstreamResponse",
                "message": "The upstream service sent an invalid response.",
            }
            assert up.requests == 1
    finally:
        await up.close()
    assert "Fatal error" not in caplog.text
    assert "Traceback" not in caplog.text
    assert [
        r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR
    ] == []


async def test_each_upstream_fault_is_logged_once_per_interval_and_counted_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """#11 item 9: a 502 used to leave no trace, and in-flight faults counted twice."""
    port = free_port()
    caplog.set_level(logging.WARNING, logger="propylon.upstream")
    # Ejection off: with it, the sixth request would be answered without trying the host.
    async with running(config(route("/x", port, ejection=None))) as gw:
        for _ in range(20):
            assert (await request(gw.port, "GET", "/x")).status == 502
        stats = gw.stats.upstreams[f"127.0.0.1:{port}"]
        assert (stats.errors, stats.last_error) == (20, "refused")
    lines = [r.getMessage() for r in caplog.records if r.name == "propylon.upstream"]
    assert lines == [
        f"upstream 127.0.0.1:{port} failed for route * /x: connection refused (refused)"
    ]


async def test_a_fault_after_the_request_was_sent_is_counted_once() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)

    up = await RawUpstream(hang_up).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            for _ in range(3):
                assert (await request(gw.port, "GET", "/x")).status == 502
            stats = gw.stats.upstreams[f"127.0.0.1:{up.port}"]
            assert (stats.errors, stats.last_error) == (3, "closed")
            assert gw.stats.routes[0].upstream_errors == 3
    finally:
        await up.close()


async def test_a_name_that_does_not_resolve_is_a_dns_fault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="propylon.upstream")
    spec = replace(route("/x", 80), downstream_hosts=(DownstreamHost("no-such-host.invalid", 80),))
    async with running(config(spec)) as gw:
        r = await request(gw.port, "GET", "/x")
        assert r.status == 502
        assert "invalid" not in r.body.decode()
        assert gw.stats.upstreams["no-such-host.invalid:80"].last_error == "dns"
    assert any("name did not resolve (dns)" in r.getMessage() for r in caplog.records)
