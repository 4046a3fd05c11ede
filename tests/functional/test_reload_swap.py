"""The swap inside one worker (``Gateway.reload``), in-process: a request that is waiting in
a stage when the new generation takes over still ends on the route, chain and upstream it
was routed to; new requests take the new ones; the old generation is closed afterwards."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiohttp import web

from propylon.config.model import HealthCheckSpec, Limits, PluginSpec
from tests.support.client import request
from tests.support.gateway import config, route, running
from tests.support.plugins import Gated
from tests.support.upstreams import RecordingUpstream, Seen


def _gate(tag: str) -> PluginSpec:
    return PluginSpec("gate", "tests.support.plugins:Gated", {"tag": tag}, "plugins.gate")


async def test_a_request_waiting_in_a_stage_finishes_on_its_old_chain() -> None:
    old_up, new_up = await RecordingUpstream().start(), await RecordingUpstream().start()
    Gated.gate, Gated.arrived, Gated.closed = asyncio.Event(), asyncio.Event(), []
    try:
        before = config(
            route("/held", old_up.port, plugins=("gate",)),
            limits=Limits(drain_timeout=0.2),
            plugins=(_gate("old"),),
        )
        # The route moves (another comes first), goes elsewhere, and its plugin is new.
        after = config(
            route("/first", new_up.port),
            route("/held", new_up.port, plugins=("gate",)),
            limits=Limits(drain_timeout=0.2),
            plugins=(_gate("new"),),
        )
        async with running(before) as gw:
            held = asyncio.create_task(request(gw.port, "GET", "/held", timeout=10))
            await asyncio.wait_for(Gated.arrived.wait(), 5)
            await gw.reload(after, "v2")
            assert gw.generation.digest == "v2"
            Gated.gate.set()
            r = await held
            assert r.status == 200
            # The old route's upstream, through the old plugin.
            assert len(old_up.seen) == 1 and old_up.last.header("X-Gated-By") == "old"
            assert new_up.seen == []

            r = await request(gw.port, "GET", "/held")
            assert r.status == 200 and new_up.last.header("X-Gated-By") == "new"
            assert (await request(gw.port, "GET", "/first")).status == 200
            # The old generation is closed once its drain timeout has passed; the new one
            # is still open.
            await asyncio.sleep(0.5)  # more than the old config's drain timeout (0.2 s)
            assert Gated.closed == ["old"]
        assert Gated.closed == ["old", "new"]
    finally:
        await old_up.close()
        await new_up.close()


async def test_a_config_that_cannot_be_built_changes_nothing() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/a", up.port))
        async with running(cfg) as gw:
            broken = replace(
                cfg,
                routes=(route("/b", up.port, plugins=("gate",)),),
                plugins=(PluginSpec("gate", "tests.support.plugins:Picky", {}, "plugins.gate"),),
            )
            with pytest.raises(ValueError, match="level is required"):
                await gw.reload(broken, "broken")
            assert gw.generation.digest == ""
            assert (await request(gw.port, "GET", "/a")).status == 200
            assert (await request(gw.port, "GET", "/b")).status == 404
    finally:
        await up.close()


async def test_kept_hosts_keep_their_health_and_a_removed_check_lets_a_host_back() -> None:
    up = await RecordingUpstream().start()

    async def failing_health(request: web.Request, _seen: Seen) -> web.StreamResponse:
        if request.path == "/health":
            return web.json_response({"ok": False}, status=500)
        return web.json_response({"path": request.path})

    up.handler = failing_health
    try:
        check = HealthCheckSpec(interval=0.05, timeout=1.0, unhealthy_threshold=1)
        checked = config(route("/a", up.port, health_check=check))
        async with running(checked) as gw:
            r = await request(gw.port, "GET", "/a")
            for _ in range(100):  # the first check takes the host out
                if r.status == 503:
                    break
                await asyncio.sleep(0.02)
                r = await request(gw.port, "GET", "/a")
            assert r.status == 503 and r.json()["codemessage"] == "UpstreamUnavailable"
            # Another route is added, the host keeps its check: still out (same pool).
            await gw.reload(config(route("/a", up.port, health_check=check), route("/b", up.port)))
            assert (await request(gw.port, "GET", "/b")).status == 503
            # The check is gone: nothing would bring the host back, so it is back now.
            await gw.reload(config(route("/a", up.port), route("/b", up.port)))
            assert (await request(gw.port, "GET", "/a")).status == 200
            checks = len([s for s in up.seen if s.path_qs == "/health"])
            await asyncio.sleep(0.2)
            assert len([s for s in up.seen if s.path_qs == "/health"]) == checks  # stopped
    finally:
        await up.close()
