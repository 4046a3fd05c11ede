"""Caches are bounded by bytes, not only by entries (security review, item 4).

Each test floods a real gateway process with requests built to make a cache hold as many
bytes as possible, then checks its resident memory stayed within the budget that
docs/security.md documents. Before the fix the first two floods grew a worker by 33 and
61 MiB, on their way to the ~300 MB that the 4,096-entry bounds allowed; now by nothing
measurable. The long-Host flood grows it by about 5 MiB, the decisions it is allowed to
keep (1,000 of the largest kept); without the size bounds on kept decisions, by 15 MiB.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import jwt

from tests.support.processes import gateway_process, ocelot_file, rss_bytes
from tests.support.upstreams import RecordingUpstream, free_port

SECRET = "memory-bounds-secret-0123456789abcdef"
BUDGET = 12 * 1024 * 1024
"""Well under the growth the floods caused unbounded, well over what the bounded caches and
the allocator's own slack add (docs/security.md: memory bounds)."""


async def _flood(port: int, heads: list[bytes]) -> list[int]:
    """Pipelined on a few connections, answers drained, so the test is fast. Returns the
    status of each answer, in the order of ``heads``; after an answer that closes the
    connection, the next request goes on a new one."""
    statuses = [0] * len(heads)

    async def one(first: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(first, len(heads), 4):
            writer.write(heads[i])
            await writer.drain()
            # One answer at a time: keeps at most one request in flight per connection.
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            assert head.startswith(b"http/1.1 "), head[:80]
            statuses[i] = int(head[9:12])
            length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if b"\r\nconnection: close\r\n" in head:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    await asyncio.gather(*(one(i) for i in range(4)))
    return statuses


def _route_requiring_auth(upstream_port: int) -> dict[str, object]:
    return {
        "UpstreamPathTemplate": "/secure/{everything}",
        "DownstreamPathTemplate": "/{everything}",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream_port}],
        "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
    }


async def _growth(
    tmp_path: Path,
    heads: list[bytes],
    routes: Callable[[int], list[dict[str, object]]] | None = None,
) -> tuple[int, list[int], RecordingUpstream]:
    """How much the worker grew over the flood of ``heads`` (after a warm-up with its first
    200), the flood's statuses, and the upstream (what it received, warm-up included).
    ``routes``: the routes to add for an upstream port (one requiring a token if None)."""
    up = await RecordingUpstream().start()
    port = free_port()
    env = {"PROPYLON_JWT_SECRET": SECRET, "PROPYLON_JWT_ALGORITHMS": "HS256"}
    try:
        extra = routes(up.port) if routes is not None else [_route_requiring_auth(up.port)]
        config = ocelot_file(tmp_path, up.port, *extra)
        with gateway_process(config, port, workers=1, env=env) as proc:
            # Warm up the allocator and every code path once before measuring.
            await _flood(port, heads[:200])
            before = rss_bytes(proc.pid)
            statuses = await _flood(port, heads)
            await asyncio.sleep(0.2)
            return rss_bytes(proc.pid) - before, statuses, up
    finally:
        await up.close()


async def test_unique_long_targets_do_not_grow_the_decision_cache(tmp_path: Path) -> None:
    filler = "x" * 6000
    heads = [
        b"GET /api/%d/%s HTTP/1.1\r\nHost: gw.test\r\n\r\n" % (i, filler.encode())
        for i in range(3000)
    ]
    growth, _statuses, _up = await _growth(tmp_path, heads)
    assert growth < BUDGET, f"grew {growth / 2**20:.1f} MiB"


async def test_padded_copies_of_one_token_do_not_grow_the_token_cache(tmp_path: Path) -> None:
    tok = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    heads = [
        b"GET /secure/x HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer %s%s\r\n\r\n"
        % (b" " * (20_000 + i), tok.encode())
        for i in range(3000)
    ]
    growth, _statuses, _up = await _growth(tmp_path, heads)
    assert growth < BUDGET, f"grew {growth / 2**20:.1f} MiB"


async def test_unique_targets_with_long_hosts_on_upstream_host_routes(tmp_path: Path) -> None:
    """The review's flood (#10 item 4): unique long targets with a long Host, on routes whose
    ``UpstreamHost`` makes the Host part of the decision's key. A Host above the limit
    (261 bytes: a DNS name and a port) is a 400; one below is served, whether its decision
    is too large to keep (a 259-byte Host, a 6 KiB target) or as large as is kept (a
    255-byte Host, a 1 KiB target). Every Host and target is unique: nothing is shared."""
    label = "a" * 63
    not_kept = f"{label}.{label}.{label}.{'n' * 61}"  # 253 bytes; with ":port", 259
    kept = f"{label}.{label}.{label}.{'k' * 57}"  # 249 bytes; with ":port", 255

    def hosted(upstream_port: int) -> list[dict[str, object]]:
        return [
            {
                "UpstreamPathTemplate": f"/{prefix}/{{everything}}",
                "DownstreamPathTemplate": f"/{prefix}/{{everything}}",
                "UpstreamHost": host,
                "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream_port}],
            }
            for prefix, host in (("wide", not_kept), ("kept", kept))
        ]

    huge_host = b"h" * 56_000  # the review's 56 KB, well inside the 64 KiB head limit
    heads: list[bytes] = []
    expected: list[int] = []
    for i in range(3000):
        port = 10_000 + i  # a unique Host each time (a bare UpstreamHost matches any port)
        if i % 3 == 0:
            host, target = huge_host + b"%d" % i, b"/wide/%d/%s" % (i, b"x" * 6000)
        elif i % 3 == 1:
            host, target = b"%s:%d" % (not_kept.encode(), port), b"/wide/%d/%s" % (i, b"x" * 6000)
        else:
            host, target = b"%s:%d" % (kept.encode(), port), b"/kept/%d/" % i
            target += b"y" * (1024 - len(target))
        heads.append(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host))
        expected.append(400 if i % 3 == 0 else 200)
    assert {len(h.split(b"Host: ")[1]) - 4 for h in heads[1:3]} == {259, 255}

    growth, statuses, up = await _growth(tmp_path, heads, hosted)
    assert statuses == expected
    # What was served reached the upstream with its own target (warm-up included); what
    # was refused reached nobody.
    served = [i for i, status in enumerate(expected) if status == 200]
    warm = [i for i in served if i < 200]
    assert sorted(s.path_qs for s in up.seen) == sorted(
        heads[i].split(b" ")[1].decode() for i in warm + served
    )
    assert growth < BUDGET, f"grew {growth / 2**20:.1f} MiB"
