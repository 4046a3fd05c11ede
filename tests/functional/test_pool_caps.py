"""Per-host connection caps, their queue and its timeout, and the idle timeout (issue #13
item 6), against real upstream servers that count the connections they are given."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from propylon.config.model import (
    BalancerSpec,
    DownstreamHost,
    EjectionSpec,
    HealthCheckSpec,
    Limits,
)
from propylon.errors import envelope
from tests.support.client import request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RawUpstream, RecordingUpstream, read_head

BUSY = envelope(
    527, "UpstreamBusy", "The upstream service is at its connection limit; try again shortly."
)


class Held:
    """An upstream that answers each request only when the test lets it, and counts the
    connections it has open at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.open = 0
        self.most = 0
        self.arrived = asyncio.Event()
        self.upstream = RawUpstream(self._serve)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            while True:
                try:
                    await read_head(reader)
                except asyncio.IncompleteReadError:
                    return
                self.arrived.set()
                await self.release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld")
                await writer.drain()
        finally:
            self.open -= 1

    async def until_waiting(self) -> None:
        """Until a request waits at the upstream for its answer."""
        await asyncio.wait_for(self.arrived.wait(), 5)


async def test_requests_beyond_the_cap_queue_and_beyond_the_queue_get_503() -> None:
    held = Held()
    up = await held.upstream.start()
    limits = Limits(upstream_max_connections=1, upstream_queue=1)
    try:
        async with running(config(route("/x", up.port), limits=limits)) as gw:
            first = asyncio.create_task(request(gw.port, "GET", "/x"))
            await held.until_waiting()
            second = asyncio.create_task(request(gw.port, "GET", "/x"))
            await asyncio.sleep(0.2)  # the second is in the queue now
            # The third finds the one connection busy and the queue full: refused at once.
            r = await request(gw.port, "GET", "/x")
            assert (r.status, r.body) == (503, BUSY)
            held.release.set()
            assert (await first).status == 200
            assert (await second).status == 200
            # The queued request took the first one's connection: one socket in all.
            assert (held.most, up.requests) == (1, 1)
            stats = gw.stats.upstreams[f"127.0.0.1:{up.port}"]
            assert (stats.queue_full, stats.queue_timeouts) == (1, 0)
            assert gw.stats.snapshot()["upstreams"][f"127.0.0.1:{up.port}"]["queue_full"] == 1
    finally:
        held.release.set()
        await up.close()


async def test_a_request_that_waits_out_the_queue_timeout_gets_503() -> None:
    held = Held()
    up = await held.upstream.start()
    limits = Limits(upstream_max_connections=1, upstream_queue=5, upstream_queue_timeout=0.3)
    try:
        async with running(config(route("/x", up.port), limits=limits)) as gw:
            first = asyncio.create_task(request(gw.port, "GET", "/x"))
            await held.until_waiting()
            loop = asyncio.get_running_loop()
            started = loop.time()
            r = await request(gw.port, "GET", "/x")
            assert (r.status, r.body) == (503, BUSY)
            assert 0.25 < loop.time() - started < 2.0
            assert gw.stats.upstreams[f"127.0.0.1:{up.port}"].queue_timeouts == 1
            held.release.set()
            assert (await first).status == 200
            assert held.most == 1
    finally:
        held.release.set()
        await up.close()


async def test_a_closed_connection_frees_its_slot_for_the_next_in_line() -> None:
    """The cap counts open sockets: when the upstream closes one, a queued request opens
    its own instead of waiting for its timeout."""

    async def answer_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(0.2)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()

    up = await RawUpstream(answer_and_close).start()
    limits = Limits(upstream_max_connections=1, upstream_queue=5)
    try:
        async with running(config(route("/x", up.port), limits=limits)) as gw:
            results = await asyncio.gather(*(request(gw.port, "GET", "/x") for _ in range(3)))
            assert [r.status for r in results] == [200, 200, 200]
            assert up.requests == 3
    finally:
        await up.close()


async def test_a_full_host_sends_the_request_to_another_host() -> None:
    """No connection to spare on the first host is an unsent try: another host takes it."""
    held = Held()
    up = await held.upstream.start()
    other = await RecordingUpstream().start()
    spec = replace(
        route("/x", up.port, balancer=BalancerSpec(kind="first")),
        downstream_hosts=(
            DownstreamHost("127.0.0.1", up.port),
            DownstreamHost("127.0.0.1", other.port),
        ),
    )
    limits = Limits(upstream_max_connections=1, upstream_queue=0)
    try:
        async with running(config(spec, limits=limits)) as gw:
            first = asyncio.create_task(request(gw.port, "GET", "/x"))
            await held.until_waiting()
            r = await request(gw.port, "POST", "/x", body=b"elsewhere")
            assert r.status == 200
            assert [(s.method, s.body) for s in other.seen] == [("POST", b"elsewhere")]
            assert gw.stats.routes[0].retries == 1
            # Saturation is not a failure of the host: nothing counted against its health.
            assert gw.stats.upstreams[f"127.0.0.1:{up.port}"].errors == 0
            held.release.set()
            assert (await first).status == 200
    finally:
        held.release.set()
        await up.close()
        await other.close()


async def test_a_host_taken_out_while_requests_queue_sends_them_elsewhere() -> None:
    """The one connection to the first host fails, which ejects the host (one failure is
    enough here): the request queued behind it goes to the other host, not to the host
    just taken out."""
    released = asyncio.Event()
    arrived = asyncio.Event()

    async def fail_when_told(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        arrived.set()
        await released.wait()
        writer.transport.abort()

    bad = await RawUpstream(fail_when_told).start()
    other = await RecordingUpstream().start()
    spec = replace(
        route("/x", bad.port, balancer=BalancerSpec(kind="first")),
        downstream_hosts=(
            DownstreamHost("127.0.0.1", bad.port),
            DownstreamHost("127.0.0.1", other.port),
        ),
        ejection=EjectionSpec(consecutive_failures=1, base=30.0, max=30.0),
    )
    limits = Limits(upstream_max_connections=1, upstream_queue=5)
    try:
        async with running(config(spec, limits=limits)) as gw:
            first = asyncio.create_task(request(gw.port, "GET", "/x"))
            await asyncio.wait_for(arrived.wait(), 5)
            queued = asyncio.create_task(request(gw.port, "GET", "/x", headers=[("X-N", "2")]))
            await asyncio.sleep(0.2)
            assert other.seen == []
            released.set()
            # The first was sent and reset: a GET on a route without `methods` is not
            # retried after that. The queued one never reached the bad host.
            assert (await first).status == 502
            assert (await queued).status == 200
            assert [s.header("X-N") for s in other.seen] == ["2"]
            assert bad.requests == 1
    finally:
        released.set()
        await bad.close()
        await other.close()


async def test_idle_connections_close_after_the_configured_idle_timeout() -> None:
    closed = asyncio.Event()

    async def answer_then_watch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if await reader.read() == b"":
            closed.set()

    up = await RawUpstream(answer_then_watch).start()
    try:
        limits = Limits(upstream_idle_timeout=0.2)
        async with running(config(route("/x", up.port), limits=limits)) as gw:
            loop = asyncio.get_running_loop()
            assert (await request(gw.port, "GET", "/x")).status == 200
            started = loop.time()
            await asyncio.wait_for(closed.wait(), 3)
            # The sweep runs every idle_timeout: closed within two of them.
            assert loop.time() - started < 1.0
    finally:
        await up.close()


async def test_a_queued_request_leaves_when_an_active_check_takes_its_host_out() -> None:
    """The host's only connection hangs, a request queues behind it, then the host fails
    its health check: the queued request is answered 503 at the next watchdog tick, not
    after its queue timeout (the route's only host: nowhere else to go)."""
    held = Held()
    up = await held.upstream.start()
    spec = route(
        "/x",
        up.port,
        health_check=HealthCheckSpec(interval=5.0, timeout=0.5, unhealthy_threshold=1),
    )
    limits = Limits(upstream_max_connections=1, upstream_queue=5, upstream_queue_timeout=10.0)
    try:
        async with running(config(spec, limits=limits)) as gw:
            first = asyncio.create_task(request(gw.port, "GET", "/x"))
            loop = asyncio.get_running_loop()
            started = loop.time()
            queued = asyncio.create_task(request(gw.port, "GET", "/x"))
            r = await queued
            # The check (held too) times out after 0.5 s: the host is down, the queued
            # request leaves the queue at once.
            assert (r.status, r.json()) == (
                503,
                {
                    "code": 521,
                    "codemessage": "UpstreamUnavailable",
                    "message": "No upstream host is available.",
                },
            )
            assert 0.4 < loop.time() - started < 3.0
            assert gw.stats.upstreams[f"127.0.0.1:{up.port}"].queue_timeouts == 0
            held.release.set()
            assert (await first).status == 200
    finally:
        held.release.set()
        await up.close()
