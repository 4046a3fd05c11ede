"""DNS discovery over real sockets: a real DNS server on loopback UDP (dnspython's message
API, answering what the test sets), real upstreams on 127.0.0.1/.2/.3 (all loopback on
Linux) sharing one port, and the gateway in this loop or as a `propylon run` process."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from propylon.config.model import (
    BalancerSpec,
    DnsSpec,
    DownstreamHost,
    EjectionSpec,
    GatewayConfig,
    HealthCheckSpec,
)
from propylon.engine.discovered import DiscoveryFailed
from propylon.engine.gateway import Gateway
from tests.support.client import request
from tests.support.dns_server import DnsServer, ThreadedDnsServer
from tests.support.gateway import config, route, running
from tests.support.processes import gateway_process
from tests.support.upstreams import RecordingUpstream, Seen, free_port

NAME = "profiles"
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def resolved_again(server: DnsServer) -> None:
    """Until the gateway has asked twice more: one whole resolution saw the current records."""
    seen = server.a_queries(NAME)
    await wait_for(lambda: server.a_queries(NAME) >= seen + 2)


@asynccontextmanager
async def upstreams(
    handler: Callable[[web.Request, Seen], object] | None = None,
) -> AsyncIterator[list[RecordingUpstream]]:
    """One upstream per loopback address, all on the same port (one name, one port)."""
    first = await RecordingUpstream().start(0, ADDRESSES[0])
    ups = [first]
    try:
        for address in ADDRESSES[1:]:
            ups.append(await RecordingUpstream().start(first.port, address))
        yield ups
    finally:
        for up in ups:
            await up.close()


def discovering(server: DnsServer, port: int, **route_kw: object) -> GatewayConfig:
    spec = replace(
        route("/x", port),
        downstream_hosts=(DownstreamHost(NAME, port),),
        discovery=0.1,
        **route_kw,  # type: ignore[arg-type]
    )
    dns = DnsSpec(nameservers=(server.nameserver,), interval=0.1, min_interval=0.05, timeout=0.5)
    return config(spec, dns=dns)


async def test_a_name_that_gains_addresses_spreads_requests_over_them() -> None:
    server = await DnsServer({NAME: ["127.0.0.1"]}).start()
    try:
        async with upstreams() as ups, running(discovering(server, ups[0].port)) as gw:
            for _ in range(6):
                assert (await request(gw.port, "GET", "/x")).status == 200
            assert [len(u.seen) for u in ups] == [6, 0, 0]
            # The name in Host, as when the gateway connected by name.
            assert ups[0].last.header("Host") == f"{NAME}:{ups[0].port}"
            server.records[NAME] = list(ADDRESSES)
            await resolved_again(server)
            for _ in range(30):
                assert (await request(gw.port, "GET", "/x")).status == 200
            assert [len(u.seen) for u in ups] == [16, 10, 10]
            assert all(u.last.header("Host") == f"{NAME}:{ups[0].port}" for u in ups)
            report = (await request(gw.port, "GET", "/stats")).json()
            assert isinstance(report, dict)
            state = report["discovery"][NAME]
            assert state["addresses"] == list(ADDRESSES)
            assert state["failing"] is False and state["last_error"] is None
            assert state["resolved_at"].endswith("Z")
            assert f"{NAME}:{ups[0].port}@127.0.0.3" in report["upstreams"]
    finally:
        server.close()


async def test_a_failed_resolution_keeps_the_set_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await DnsServer({NAME: list(ADDRESSES)}).start()
    try:
        async with upstreams() as ups, running(discovering(server, ups[0].port)) as gw:
            with caplog.at_level(logging.INFO, logger="propylon.discovery"):
                server.failing = True
                await resolved_again(server)
                await resolved_again(server)
                for _ in range(9):
                    assert (await request(gw.port, "GET", "/x")).status == 200
                assert [len(u.seen) for u in ups] == [3, 3, 3]
                report = (await request(gw.port, "GET", "/stats")).json()
                assert isinstance(report, dict)
                state = report["discovery"][NAME]
                assert state["addresses"] == list(ADDRESSES) and state["failing"] is True
                assert "SERVFAIL" in state["last_error"]
                # An empty answer is no better: the set stays.
                server.failing = False
                server.records[NAME] = []
                await resolved_again(server)
                assert len(gw.plans[0].selector.pools) == 3
                server.records[NAME] = list(ADDRESSES)
                await resolved_again(server)
            messages = [r.getMessage() for r in caplog.records]
            assert len([m for m in messages if "did not resolve" in m]) == 1
            assert len([m for m in messages if "resolves again" in m]) == 1
            assert "keeping its 3 address(es)" in next(m for m in messages if "did not" in m)
            report = (await request(gw.port, "GET", "/stats")).json()
            assert isinstance(report, dict)
            assert report["discovery"][NAME]["failing"] is False
    finally:
        server.close()


async def test_an_address_that_stays_keeps_its_health() -> None:
    """127.0.0.1 has nothing listening on the port: it fails, is ejected, and stays ejected
    when the name gains an address (the pool, and its health, are kept)."""
    up = await RecordingUpstream().start(0, "127.0.0.2")
    server = await DnsServer({NAME: ["127.0.0.1"]}).start()
    try:
        cfg = discovering(
            server,
            up.port,
            ejection=EjectionSpec(consecutive_failures=2, base=30.0),
            balancer=BalancerSpec(kind="round_robin"),
        )
        async with running(cfg) as gw:
            for _ in range(2):
                assert (await request(gw.port, "GET", "/x")).status == 502
            server.records[NAME] = ["127.0.0.1", "127.0.0.2"]
            await resolved_again(server)
            for _ in range(6):
                assert (await request(gw.port, "GET", "/x")).status == 200
            assert len(up.seen) == 6
            report = (await request(gw.port, "GET", "/stats")).json()
            assert isinstance(report, dict)
            health = report["upstreams"][f"{NAME}:{up.port}@127.0.0.1"]["health"]
            assert health["up"] is False and health["consecutive_failures"] == 2
    finally:
        server.close()
        await up.close()


async def test_every_address_gets_its_own_active_check_with_the_name_in_host() -> None:
    async def sick(request: web.Request, _seen: Seen) -> web.StreamResponse:
        return web.json_response({}, status=503 if request.path == "/health" else 200)

    server = await DnsServer({NAME: ["127.0.0.1"]}).start()
    try:
        async with upstreams() as ups:
            ups[1].handler = sick
            check = HealthCheckSpec(path="/health", interval=0.1, timeout=0.5)
            cfg = discovering(server, ups[0].port, health_check=check)
            async with running(cfg) as gw:
                server.records[NAME] = ["127.0.0.1", "127.0.0.2"]
                await resolved_again(server)
                sick_pool = next(p for p in gw.plans[0].selector.pools if p.address == "127.0.0.2")
                await wait_for(lambda: sick_pool.health.checked_down)
                for _ in range(4):
                    assert (await request(gw.port, "GET", "/x")).status == 200
                assert [s.path_qs for s in ups[1].seen if s.path_qs != "/health"] == []
                checks = [s for s in ups[0].seen if s.path_qs == "/health"]
                assert checks and checks[0].header("Host") == f"{NAME}:{ups[0].port}"
                # Removed from the set: no more checks of it.
                server.records[NAME] = ["127.0.0.1"]
                await resolved_again(server)
                await asyncio.sleep(0.15)
                before = len(ups[1].seen)
                await asyncio.sleep(0.3)
                assert len(ups[1].seen) == before
    finally:
        server.close()


async def test_a_request_in_flight_on_a_removed_address_finishes() -> None:
    async def slow(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        await asyncio.sleep(0.6)
        return web.json_response({"slow": True})

    server = await DnsServer({NAME: ["127.0.0.2"]}).start()
    try:
        async with upstreams() as ups:
            ups[1].handler = slow
            async with running(discovering(server, ups[0].port)) as gw:
                pending = asyncio.create_task(request(gw.port, "GET", "/x", timeout=5))
                await wait_for(lambda: len(ups[1].seen) == 1)
                server.records[NAME] = ["127.0.0.1"]
                await resolved_again(server)
                assert [p.address for p in gw.plans[0].selector.pools] == ["127.0.0.1"]
                r = await pending
                assert r.status == 200 and r.json() == {"slow": True}
                for _ in range(4):
                    assert (await request(gw.port, "GET", "/x")).status == 200
                assert [len(u.seen) for u in ups] == [4, 1, 0]
                report = (await request(gw.port, "GET", "/stats")).json()
                assert isinstance(report, dict)
                assert f"{NAME}:{ups[0].port}@127.0.0.2" not in report["upstreams"]
    finally:
        server.close()


async def test_start_up_fails_only_when_a_route_has_no_address_at_all() -> None:
    server = await DnsServer({}).start()
    try:
        async with upstreams() as ups:
            cfg = discovering(server, ups[0].port)
            gateway = Gateway(cfg)
            with pytest.raises(DiscoveryFailed) as failed:
                await gateway.start("127.0.0.1", 0)
            await gateway.stop(0)
            message = str(failed.value)
            assert "routes[0]" in message and f"{NAME}:{ups[0].port}" in message
            assert "NXDOMAIN" in message
            # A fixed host beside the name is a fallback: the route starts and serves.
            spec = cfg.routes[0]
            fallback = replace(
                spec,
                downstream_hosts=(*spec.downstream_hosts, DownstreamHost("127.0.0.3", ups[0].port)),
            )
            async with running(replace(cfg, routes=(fallback,))) as gw:
                assert (await request(gw.port, "GET", "/x")).status == 200
                assert [len(u.seen) for u in ups] == [0, 0, 1]
                # The name appears later: it joins the set.
                server.records[NAME] = ["127.0.0.1"]
                await resolved_again(server)
                for _ in range(4):
                    assert (await request(gw.port, "GET", "/x")).status == 200
                assert [len(u.seen) for u in ups] == [2, 0, 3]
    finally:
        server.close()


async def test_a_short_ttl_re_resolves_sooner_than_the_interval_but_not_below_the_floor() -> None:
    server = await DnsServer({NAME: ["127.0.0.1"]}, ttl=0).start()
    try:
        async with upstreams() as ups:
            cfg = discovering(server, ups[0].port)
            cfg = replace(cfg, routes=(replace(cfg.routes[0], discovery=30.0),))
            cfg = replace(cfg, dns=replace(cfg.dns, interval=30.0, min_interval=0.2))
            async with running(cfg):
                started = server.a_queries(NAME)
                await asyncio.sleep(1.1)
                # TTL 0 floored at 0.2 s: about five more, never one every loop turn.
                assert 3 <= server.a_queries(NAME) - started <= 6
    finally:
        server.close()


def _native(tmp: Path, server: DnsServer, port: int) -> Path:
    path = tmp / "gateway.yaml"
    path.write_text(
        f"""propylon: 1
dns:
  nameservers: ["127.0.0.1:{server.port}"]
  interval: 200ms
  min_interval: 100ms
  timeout: 500ms
routes:
  - path: /x
    downstream:
      hosts: ["{NAME}:{port}"]
      discovery: true
"""
    )
    return path


async def test_a_gateway_process_follows_the_name_from_one_address_to_three(
    tmp_path: Path,
) -> None:
    threaded = ThreadedDnsServer({NAME: ["127.0.0.1"]})
    server = threaded.start()
    port = free_port()
    try:
        async with upstreams() as ups:
            config_file = _native(tmp_path, server, ups[0].port)
            with gateway_process(config_file, port, workers=1):
                for _ in range(3):
                    assert (await request(port, "GET", "/x")).status == 200
                assert [len(u.seen) for u in ups] == [3, 0, 0]
                server.records[NAME] = list(ADDRESSES)
                await resolved_again(server)
                for _ in range(30):
                    assert (await request(port, "GET", "/x")).status == 200
                assert [len(u.seen) for u in ups] == [13, 10, 10]
                report = (await request(port, "GET", "/stats")).json()
                assert isinstance(report, dict)
                assert report["discovery"][NAME]["addresses"] == list(ADDRESSES)
    finally:
        threaded.close()


async def test_a_gateway_process_whose_only_name_does_not_resolve_does_not_start(
    tmp_path: Path,
) -> None:
    server = await DnsServer({}).start()
    try:
        config_file = _native(tmp_path, server, free_port())
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "propylon",
            "run",
            "--config",
            str(config_file),
            "--port",
            str(free_port()),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 1
        text = out.decode()
        assert "DNS discovery found no address" in text
        assert "routes[0]" in text and "NXDOMAIN" in text
        assert "Traceback" not in text
    finally:
        server.close()


async def test_without_nameservers_the_system_resolver_is_used() -> None:
    """getaddrinfo, as a connection would have resolved the name (here from /etc/hosts)."""
    infos = await asyncio.get_running_loop().getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    expected = sorted({str(info[4][0]) for info in infos})
    first = await RecordingUpstream().start(0, expected[0])
    ups = [first]
    try:
        for address in expected[1:]:
            ups.append(await RecordingUpstream().start(first.port, address))
        spec = replace(
            route("/x", first.port),
            downstream_hosts=(DownstreamHost("localhost", first.port),),
            discovery=10.0,
        )
        async with running(config(spec)) as gw:
            for _ in range(4):
                assert (await request(gw.port, "GET", "/x")).status == 200
            assert sum(len(u.seen) for u in ups) == 4
            report = (await request(gw.port, "GET", "/stats")).json()
            assert isinstance(report, dict)
            state = report["discovery"]["localhost"]
            assert sorted(state["addresses"]) == expected and state["ttl"] is None
    finally:
        for up in ups:
            await up.close()


async def test_after_a_reload_the_new_config_resolves_and_follows_the_name() -> None:
    # Each generation resolves its own names: the reloaded one has the addresses before it
    # serves, follows later changes, and the replaced one stops following them.
    server = await DnsServer({NAME: ["127.0.0.1"]}).start()
    try:
        async with upstreams() as ups:
            before = discovering(server, ups[0].port)
            async with running(before) as gw:
                assert (await request(gw.port, "GET", "/x")).status == 200
                server.records[NAME] = ["127.0.0.2"]
                after = replace(before, routes=(*before.routes, route("/y", ups[0].port)))
                await gw.reload(after, "v2")
                # Resolved by the new generation before the swap: the new address at once.
                for _ in range(4):
                    assert (await request(gw.port, "GET", "/x")).status == 200
                assert [len(u.seen) for u in ups] == [1, 4, 0]
                assert (await request(gw.port, "GET", "/y")).status == 200
                server.records[NAME] = ["127.0.0.3"]
                await resolved_again(server)
                for _ in range(4):
                    assert (await request(gw.port, "GET", "/x")).status == 200
                assert [len(u.seen) for u in ups] == [2, 4, 4]
                report = (await request(gw.port, "GET", "/stats")).json()
                assert isinstance(report, dict)
                assert report["discovery"][NAME]["addresses"] == ["127.0.0.3"]
                assert f"{NAME}:{ups[0].port}@127.0.0.3" in report["upstreams"]
    finally:
        server.close()
