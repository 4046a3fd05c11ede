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
from tests.support.client import exchange_raw
from tests.support.gateway import config, route, running
from tests.support.upstreams import RecordingUpstream


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
