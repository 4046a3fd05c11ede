"""Caches are bounded by bytes, not only by entries (security review, item 4).

Each test floods a real gateway process with requests built to make a cache hold as many
bytes as possible, then checks its resident memory stayed within the budget that
docs/security.md documents. Before the fix these floods grew a worker by 33 and 61 MiB, on
their way to the ~300 MB that the 4,096-entry bounds allowed; now by nothing measurable.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt

from tests.support.processes import gateway_process, ocelot_file, rss_bytes
from tests.support.upstreams import RecordingUpstream, free_port

SECRET = "memory-bounds-secret-0123456789abcdef"
BUDGET = 12 * 1024 * 1024
"""Well under the growth the floods caused unbounded, well over what the bounded caches and
the allocator's own slack add (docs/security.md: memory bounds)."""


async def _flood(port: int, heads: list[bytes]) -> None:
    """Pipelined on a few connections, answers drained, so the test is fast."""

    async def one(batch: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for head in batch:
            writer.write(head)
            await writer.drain()
            # One answer at a time: keeps at most one request in flight per connection.
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            assert head.startswith(b"http/1.1 "), head[:80]
            length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()

    await asyncio.gather(*(one(heads[i::4]) for i in range(4)))


def _route_requiring_auth(upstream_port: int) -> dict[str, object]:
    return {
        "UpstreamPathTemplate": "/secure/{everything}",
        "DownstreamPathTemplate": "/{everything}",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream_port}],
        "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
    }


async def _growth(tmp_path: Path, heads: list[bytes]) -> int:
    up = await RecordingUpstream().start()
    port = free_port()
    env = {"PROPYLON_JWT_SECRET": SECRET, "PROPYLON_JWT_ALGORITHMS": "HS256"}
    try:
        config = ocelot_file(tmp_path, up.port, _route_requiring_auth(up.port))
        with gateway_process(config, port, workers=1, env=env) as proc:
            # Warm up the allocator and every code path once before measuring.
            await _flood(port, heads[:200])
            before = rss_bytes(proc.pid)
            await _flood(port, heads)
            await asyncio.sleep(0.2)
            return rss_bytes(proc.pid) - before
    finally:
        await up.close()


async def test_unique_long_targets_do_not_grow_the_decision_cache(tmp_path: Path) -> None:
    filler = "x" * 6000
    heads = [
        b"GET /api/%d/%s HTTP/1.1\r\nHost: gw.test\r\n\r\n" % (i, filler.encode())
        for i in range(3000)
    ]
    growth = await _growth(tmp_path, heads)
    assert growth < BUDGET, f"grew {growth / 2**20:.1f} MiB"


async def test_padded_copies_of_one_token_do_not_grow_the_token_cache(tmp_path: Path) -> None:
    tok = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    heads = [
        b"GET /secure/x HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer %s%s\r\n\r\n"
        % (b" " * (20_000 + i), tok.encode())
        for i in range(3000)
    ]
    growth = await _growth(tmp_path, heads)
    assert growth < BUDGET, f"grew {growth / 2**20:.1f} MiB"
