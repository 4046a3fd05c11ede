"""A slow request body cannot hold an exchange and its upstream connection (review, item 5).

Every body byte counts as activity for the route timeout, so a client trickling bytes used
to keep a 3 s route busy for as long as it liked (six bytes two seconds apart: a 200 after
12 s). Now the body must arrive within ``limits.body_timeout`` and, after
``limits.body_rate_grace``, average ``limits.min_body_rate`` bytes per second.
"""

from __future__ import annotations

import asyncio
import time

from propylon.config.model import Limits
from tests.support.client import exchange_raw, request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RawUpstream, RecordingUpstream, read_head


async def _trickle(port: int, total: int, gap: float, limit: float) -> tuple[bytes, float, bool]:
    """Send a POST announcing ``total`` bytes, one byte per ``gap`` seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % total)
    answer = b""
    closed = False

    async def read_all() -> None:
        nonlocal answer, closed
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionError:
                # The gateway closed while a byte of ours was in flight: the kernel answers
                # that byte with a reset. Closed all the same.
                chunk = b""
            if not chunk:
                closed = True
                return
            answer += chunk

    reading = asyncio.create_task(read_all())
    try:
        for _ in range(total):
            if reading.done():
                break
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(gap)
        await asyncio.wait_for(reading, limit)
    except (TimeoutError, ConnectionError):
        pass
    finally:
        reading.cancel()
        writer.close()
    return answer, time.monotonic() - started, closed


async def test_a_trickled_body_gets_408_once_it_falls_below_the_minimum_rate() -> None:
    up = await RecordingUpstream().start()
    try:
        limits = Limits(body_rate_grace=1.0, min_body_rate=100, body_timeout=30)
        async with running(config(route("/upload", up.port, timeout=3), limits=limits)) as gw:
            answer, took, closed = await _trickle(gw.port, total=6, gap=0.5, limit=5)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:60]
        assert b'"codemessage":"RequestTimeout"' in answer
        assert closed
        assert took < 3.0
        # The upstream never saw a complete request: it was cut, not served.
        assert up.seen == [] or up.last.body_len < 6
    finally:
        await up.close()


async def test_the_whole_body_must_arrive_within_the_body_timeout() -> None:
    up = await RecordingUpstream().start()
    try:
        limits = Limits(min_body_rate=0, body_timeout=1.5)
        async with running(config(route("/upload", up.port, timeout=10), limits=limits)) as gw:
            answer, took, closed = await _trickle(gw.port, total=40, gap=0.1, limit=5)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:60]
        assert closed
        assert 1.4 < took < 3.0
    finally:
        await up.close()


async def test_a_body_at_a_decent_rate_is_not_disturbed() -> None:
    up = await RecordingUpstream().start()
    try:
        limits = Limits(body_rate_grace=0.5, min_body_rate=100, body_timeout=10)
        async with running(config(route("/upload", up.port), limits=limits)) as gw:
            body = b"y" * 2000
            head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
            responses, _raw, _closed = await exchange_raw(gw.port, head + body, timeout=5)
        assert [r.status for r in responses] == [200]
        assert up.last.body_len == 2000
    finally:
        await up.close()


async def test_a_body_too_slow_after_the_upstream_answered_cuts_both_connections() -> None:
    """The upstream may answer before it has read the body (an early 200 here): once the
    response has begun, a 408 can no longer be sent. The client's connection is cut (it
    never sees a complete response), and the upstream connection, which still expects
    body bytes, is closed rather than pooled: the next request gets a new one."""
    upstream_closed = asyncio.Event()
    forwarded = bytearray()

    async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        if upstream.requests > 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await reader.read()  # until the gateway closes this one
            return
        # Answer at once, before the body: a head and 10 of the 100 bytes it announces.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"p" * 10)
        await writer.drain()
        try:
            while chunk := await reader.read(65536):
                forwarded.extend(chunk)
        finally:
            upstream_closed.set()

    upstream = await RawUpstream(behaviour).start()
    try:
        limits = Limits(body_rate_grace=1.0, min_body_rate=100, body_timeout=30)
        cfg = config(route("/upload", upstream.port, timeout=10), limits=limits)
        async with running(cfg) as gw:
            answer, took, closed = await _trickle(gw.port, total=20, gap=0.3, limit=5)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), answer[:60]
            assert b"content-length: 100" in head.lower()
            assert body == b"p" * 10  # cut short: 10 of 100 bytes, and no 408 after them
            assert closed
            assert took < 3.0
            # The gateway closed the upstream connection too, mid-body.
            await asyncio.wait_for(upstream_closed.wait(), 2.0)
            assert 0 < len(forwarded) < 20
            r = await request(gw.port, "GET", "/upload")
            assert (r.status, r.body) == (200, b"ok")
            assert upstream.requests == 2  # a new upstream connection, not the cut one
    finally:
        await upstream.close()
