"""The pool invariant: an upstream connection returns to the pool only after the gateway
wrote exactly the request body it announced and read exactly one complete response; every
other connection is closed, never dropped with its socket still open."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.client import request
from tests.support.framing import converse
from tests.support.processes import gateway_process, ocelot_file, open_fds
from tests.support.upstreams import RecordingUpstream, Seen, free_port


@pytest.mark.parametrize("answer", ["length-zero", "no-content", "not-modified"])
async def test_head_responses_without_a_body_leak_no_socket(tmp_path: Path, answer: str) -> None:
    async def handler(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        if answer == "no-content":
            return web.Response(status=204)
        if answer == "not-modified":
            return web.Response(status=304, headers={"ETag": '"v1"'})
        response = web.StreamResponse(status=200, headers={"Content-Length": "0"})
        await response.prepare(_request)
        return response

    up = await RecordingUpstream(handler=handler).start()
    port = free_port()
    try:
        with gateway_process(ocelot_file(tmp_path, up.port), port, workers=1) as proc:
            warm = await request(port, "HEAD", "/api/warm")
            assert warm.status in (200, 204, 304)
            before = open_fds(proc.pid)
            # Sequential HEADs on one client connection: each should reuse one pooled
            # upstream connection, so the count of open descriptors stays flat.
            data = b"".join(
                b'HEAD /api/item/%d HTTP/1.1\r\nHost: g\r\nIf-None-Match: "v1"\r\n\r\n' % i
                for i in range(300)
            )
            view = await converse(port, data, ["HEAD"] * 300, timeout=20)
            assert len(view.statuses) == 300
            await asyncio.sleep(0.2)
            after = open_fds(proc.pid)
            assert after - before <= 3, f"{after - before} descriptors more after 300 HEADs"
            assert len(up.seen) == 301
    finally:
        await up.close()
