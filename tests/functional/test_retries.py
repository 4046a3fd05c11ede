"""Retries over real sockets (issue #13 item 4): each class of failure, body replay, the
never-replayed upload, per-try timeouts and the retry budget.

Every route here lists a host that fails first (``first`` balancer) and, where a retry is
expected, a real HTTP server second: which one answered, and what it received, is what
the upstream saw.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from propylon.config.model import (
    NO_RETRIES,
    BalancerSpec,
    DownstreamHost,
    RetrySpec,
    RouteSpec,
)
from propylon.errors import envelope
from tests.support.client import request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RawUpstream, RecordingUpstream, free_port, read_head

UNAVAILABLE = envelope(521, "UpstreamUnavailable", "The upstream service is unavailable.")
# Fast tries: a millisecond of backoff keeps the tests quick and still goes through the timer.
QUICK = RetrySpec(backoff=0.001, backoff_max=0.001)


def _over(ports: list[int], **kw: object) -> RouteSpec:
    spec = route("/x", ports[0], balancer=BalancerSpec(kind="first"))
    hosts = tuple(DownstreamHost("127.0.0.1", p) for p in ports)
    return replace(spec, downstream_hosts=hosts, **kw)  # type: ignore[arg-type]


async def _resetting() -> RawUpstream:
    """Reads a whole request (head and Content-Length body), then resets without a byte."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        writer.transport.abort()

    return await RawUpstream(reset).start()


async def test_a_refused_host_is_retried_on_the_next_for_every_method_by_default() -> None:
    """Unsent (connect refused): the upstream provably never saw it, so even a POST with
    its body goes to the next host, on a route that configures nothing."""
    dead = free_port()
    good = await RecordingUpstream().start()
    try:
        async with running(config(_over([dead, good.port]))) as gw:
            r = await request(gw.port, "POST", "/x", body=b'{"n": 1}')
            assert r.status == 200
            assert [(s.method, s.body) for s in good.seen] == [("POST", b'{"n": 1}')]
            # The Host line names the host that got the request, not the one tried first.
            assert good.last.header("Host") == f"127.0.0.1:{good.port}"
            assert gw.stats.routes[0].retries == 1
            assert gw.stats.upstreams[f"127.0.0.1:{dead}"].errors == 1
            assert gw.stats.routes[0].upstream_errors == 0
    finally:
        await good.close()


async def test_retries_false_never_retries() -> None:
    dead = free_port()
    good = await RecordingUpstream().start()
    try:
        async with running(config(_over([dead, good.port], retries=NO_RETRIES))) as gw:
            r = await request(gw.port, "GET", "/x")
            assert (r.status, r.body) == (502, UNAVAILABLE)
            assert good.seen == []
            assert gw.stats.routes[0].retries == 0
    finally:
        await good.close()


async def test_a_reset_after_sending_is_retried_only_for_the_routes_methods() -> None:
    """Sent, then reset before a byte of the answer: the service may have acted on it. A
    route without ``methods`` does not retry it; one with them retries those methods only,
    replaying the (small) body byte for byte."""
    bad = await _resetting()
    good = await RecordingUpstream().start()
    try:
        plain = _over([bad.port, good.port], retries=QUICK)
        listed = replace(
            _over([bad.port, good.port], retries=replace(QUICK, methods=frozenset({"PUT"}))),
            upstream_path="/y",
            downstream_path="/y",
            source="routes[1]",
        )
        async with running(config(plain, listed)) as gw:
            r = await request(gw.port, "PUT", "/x", body=b"first")
            assert (r.status, r.body) == (502, UNAVAILABLE)
            assert good.seen == []

            r = await request(gw.port, "PUT", "/y", body=b"replayed body")
            assert r.status == 200
            assert [(s.method, s.body) for s in good.seen] == [("PUT", b"replayed body")]
            # POST is not listed: sent once, never again.
            r = await request(gw.port, "POST", "/y", body=b"once")
            assert r.status == 502
            assert len(good.seen) == 1
            assert bad.requests == 3
            assert (gw.stats.routes[0].retries, gw.stats.routes[1].retries) == (0, 1)
    finally:
        await bad.close()
        await good.close()


async def test_a_streamed_upload_is_never_replayed() -> None:
    """A body over ``replay_body_bytes`` is not kept: once it streamed to a host that then
    failed, the client gets the 502 and no other host sees a byte of it."""
    bad = await _resetting()
    good = await RecordingUpstream().start()
    try:
        spec = replace(QUICK, methods=frozenset({"PUT"}), replay_body_bytes=1024)
        async with running(config(_over([bad.port, good.port], retries=spec))) as gw:
            r = await request(gw.port, "PUT", "/x", body=b"u" * 4096)
            assert (r.status, r.body) == (502, UNAVAILABLE)
            assert good.seen == []
            # Exactly at the bound it is kept, and replayed.
            r = await request(gw.port, "PUT", "/x", body=b"k" * 1024)
            assert r.status == 200 and good.last.body == b"k" * 1024
    finally:
        await bad.close()
        await good.close()


async def test_a_chunked_upload_over_the_bound_is_never_replayed() -> None:
    bad = await _resetting_chunked()
    good = await RecordingUpstream().start()
    try:
        spec = replace(QUICK, methods=frozenset({"PUT"}), replay_body_bytes=100)
        async with running(config(_over([bad.port, good.port], retries=spec))) as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(
                b"PUT /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n" + b"c8\r\n" + b"z" * 200 + b"\r\n0\r\n\r\n"
            )
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 502 ")
            assert good.seen == []
    finally:
        await bad.close()
        await good.close()


async def _resetting_chunked() -> RawUpstream:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await reader.readuntil(b"0\r\n\r\n")
        writer.transport.abort()

    return await RawUpstream(reset).start()


async def test_a_stale_keep_alive_connection_is_retried_on_a_single_host_route() -> None:
    """Stale: the upstream answers once per connection, then resets the next request on it
    unanswered. A body-less GET goes again (on a fresh connection: the only host); a POST
    is not sent twice."""

    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_head(reader)
        writer.transport.abort()

    up = await RawUpstream(one_shot).start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            assert (await request(gw.port, "GET", "/x")).status == 200
            r = await request(gw.port, "GET", "/x")
            assert (r.status, r.body) == (200, b"ok")
            assert gw.stats.routes[0].retries == 1
            # A stale connection says nothing about the host: no error counted against it.
            assert gw.stats.upstreams[f"127.0.0.1:{up.port}"].errors == 0
            r = await request(gw.port, "POST", "/x", body=b"{}")
            assert (r.status, r.body) == (502, UNAVAILABLE)
            assert gw.stats.routes[0].retries == 1
    finally:
        await up.close()


async def test_a_per_try_timeout_moves_a_hung_try_to_the_next_host() -> None:
    async def hang(reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(10)

    hung = await RawUpstream(hang).start()
    good = await RecordingUpstream().start()
    try:
        spec = replace(QUICK, methods=frozenset({"GET"}), per_try_timeout=0.3)
        hosts = [hung.port, good.port]
        async with running(config(_over(hosts, retries=spec, timeout=1.5))) as gw:
            loop = asyncio.get_running_loop()
            started = loop.time()
            r = await request(gw.port, "GET", "/x")
            assert r.status == 200 and len(good.seen) == 1
            assert 0.25 < loop.time() - started < 2.0
            assert gw.stats.upstreams[f"127.0.0.1:{hung.port}"].last_error == "timeout"
            # A POST is not listed: its try is not cut short, it waits out the route's
            # timeout and is never sent to the other host.
            started = loop.time()
            r = await request(gw.port, "POST", "/x", body=b"x")
            assert r.status == 504
            assert loop.time() - started > 1.2
            assert len(good.seen) == 1
    finally:
        await hung.close()
        await good.close()


async def test_the_retry_budget_caps_retries_in_a_total_outage() -> None:
    """Both hosts take each request and reset it unanswered. With a budget of half the
    requests (and no floor) 20 GETs make 10 retries, not 20: the outage costs the services
    1.5 times the load, not twice."""
    bad = [await _resetting(), await _resetting()]
    spec = replace(QUICK, budget_ratio=0.5, budget_floor=0.0, methods=frozenset({"GET"}))
    try:
        # No ejection: every request must reach the hosts for the count to be exact.
        ports = [up.port for up in bad]
        async with running(config(_over(ports, retries=spec, ejection=None))) as gw:
            for _ in range(20):
                assert (await request(gw.port, "GET", "/x")).status == 502
            stats = gw.stats.routes[0]
            assert (stats.retries, stats.retries_refused) == (10, 10)
            assert sum(up.requests for up in bad) == 30
            report = gw.stats.snapshot()["routes"][0]
            assert (report["retries"], report["retries_refused"]) == (10, 10)
    finally:
        for up in bad:
            await up.close()


async def test_retries_of_tries_that_reached_no_service_spend_no_budget() -> None:
    """Both hosts refuse: no service did any work, so each request is retried once on the
    other host (``attempts``), whatever the budget says; the budget stays untouched."""
    dead = [free_port(), free_port()]
    spec = replace(QUICK, budget_ratio=0.0, budget_floor=0.0)
    async with running(config(_over(dead, retries=spec, ejection=None))) as gw:
        for _ in range(20):
            assert (await request(gw.port, "GET", "/x")).status == 502
        stats = gw.stats.routes[0]
        assert (stats.retries, stats.retries_refused) == (20, 0)
        assert sum(gw.stats.upstreams[f"127.0.0.1:{p}"].errors for p in dead) == 40


async def test_attempts_bound_the_tries() -> None:
    dead = [free_port(), free_port(), free_port()]
    good = await RecordingUpstream().start()
    try:
        two = _over([*dead, good.port], retries=QUICK)
        four = replace(
            _over([*dead, good.port], retries=replace(QUICK, attempts=4)),
            upstream_path="/y",
            downstream_path="/y",
            source="routes[1]",
        )
        async with running(config(two, four)) as gw:
            assert (await request(gw.port, "GET", "/x")).status == 502
            assert good.seen == []
            assert (await request(gw.port, "GET", "/y")).status == 200
            assert [s.path_qs for s in good.seen] == ["/y"]
            assert (gw.stats.routes[0].retries, gw.stats.routes[1].retries) == (1, 3)
    finally:
        await good.close()
