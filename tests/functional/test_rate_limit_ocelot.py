"""Ocelot's RateLimitOptions through the real loader and a real gateway: the cases of
Ocelot's own ClientHeaderRateLimitingTests (acceptance) ported, plus the 25.0 trap.

What the client sees is asserted (status, envelope, headers) and what the upstream got."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from propylon.config.loader import load_config
from propylon.config.model import GatewayConfig
from tests.support.client import Response, request
from tests.support.gateway import running
from tests.support.upstreams import RecordingUpstream

LEGACY_GLOBAL = {
    # What Ocelot's acceptance tests put in GlobalConfiguration (old names, no Limit).
    "ClientIdHeader": "ClientId",
    "QuotaExceededMessage": "Exceeding!",
    "RateLimitCounterPrefix": "ABC",
    "HttpStatusCode": 429,
}


def ocelot(
    tmp_path: Path, port: int, *routes: dict[str, Any], glob: dict[str, Any] | None = None
) -> GatewayConfig:
    path = tmp_path / "ocelot.json"
    full = [
        {
            "UpstreamPathTemplate": "/ClientRateLimit",
            "DownstreamPathTemplate": "/api/ClientRateLimit",
            "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": port}],
            **r,
        }
        for r in routes
    ]
    data: dict[str, Any] = {"Routes": full}
    if glob is not None:
        data["GlobalConfiguration"] = {"RateLimitOptions": glob}
    path.write_text(json.dumps(data))
    return load_config(str(path), env={})


def limited(limit: int = 3, period: str = "1s", **more: Any) -> dict[str, Any]:
    return {"RateLimitOptions": {"Limit": limit, "Period": period, **more}}


async def get(
    port: int,
    path: str = "/ClientRateLimit",
    client: str | None = "ocelotclient1",
    header: str = "ClientId",
) -> Response:
    headers = [(header, client)] if client is not None else []
    return await request(port, "GET", path, headers)


async def test_three_per_second_then_429_with_the_quota_message(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(tmp_path, up.port, limited(3, "1s", PeriodTimespan=1), glob=LEGACY_GLOBAL)
        async with running(cfg) as gw:
            first = [await get(gw.port) for _ in range(3)]
            refused = await get(gw.port)
        assert [r.status for r in first] == [200, 200, 200]
        assert [r.header("X-RateLimit-Remaining") for r in first] == ["2", "1", "0"]
        assert {r.header("X-RateLimit-Limit") for r in first} == {"3"}
        assert refused.status == 429
        assert refused.json() == {
            "code": 427,
            "codemessage": "RateLimited",
            "message": "Exceeding!",
        }
        assert 0 < float(refused.header("Retry-After") or "0") <= 1.0
        # Ocelot sends no X-RateLimit-* on a refusal.
        assert refused.header("X-RateLimit-Remaining") is None
        assert len(up.seen) == 3
    finally:
        await up.close()


async def test_reset_is_the_window_end_in_dotnet_round_trip_format(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(tmp_path, up.port, limited(3, "100s"), glob=LEGACY_GLOBAL)
        async with running(cfg) as gw:
            before = time.time()
            answer = await get(gw.port)
        reset = answer.header("X-RateLimit-Reset") or ""
        assert len(reset) == len("2025-09-11T03:04:05.0060070Z") and reset.endswith("0Z")
        moment = datetime.strptime(reset[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
        assert before + 99 < moment.timestamp() < before + 101
    finally:
        await up.close()


async def test_wait_bans_after_the_limit_and_then_a_new_window_opens(tmp_path: Path) -> None:
    # Ocelot's Should_wait_for_period_timespan_to_elapse_before_making_next_request, halved.
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(tmp_path, up.port, limited(3, "500ms", Wait="500ms"), glob=LEGACY_GLOBAL)
        async with running(cfg) as gw:
            statuses = [(await get(gw.port)).status for _ in range(4)]
            await asyncio.sleep(0.25)  # half of the ban
            during = await get(gw.port)
            await asyncio.sleep(0.3)  # the ban is over: a new window, this is its first
            after = await get(gw.port)
        assert statuses == [200, 200, 200, 429]
        assert during.status == 429
        assert 0 < float(during.header("Retry-After") or "0") < 0.3
        assert (after.status, after.header("X-RateLimit-Remaining")) == (200, "2")
        assert len(up.seen) == 4
    finally:
        await up.close()


async def test_a_wait_longer_than_the_period_keeps_refusing(tmp_path: Path) -> None:
    # Ocelot bug 1590's scenario: 100 per 1s with a 3 s wait; scaled to 5 per 200ms, 600ms.
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(tmp_path, up.port, limited(5, "200ms", Wait="600ms"), glob=LEGACY_GLOBAL)
        async with running(cfg) as gw:
            statuses = [(await get(gw.port)).status for _ in range(6)]
            await asyncio.sleep(0.3)  # the window is over, the wait is not
            still = await get(gw.port)
            await asyncio.sleep(0.4)
            again = await get(gw.port)
        assert statuses == [200] * 5 + [429]
        assert still.status == 429
        assert again.status == 200
    finally:
        await up.close()


async def test_whitelisted_clients_are_neither_limited_nor_told(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        route = limited(3, "3s", PeriodTimespan=2, ClientWhitelist=["ocelotclient1"])
        cfg = ocelot(tmp_path, up.port, route, glob=LEGACY_GLOBAL)
        async with running(cfg) as gw:
            answers = [await get(gw.port) for _ in range(4)]
            other = [await get(gw.port, client="someone-else") for _ in range(4)]
        assert [r.status for r in answers] == [200] * 4
        assert all(r.header("X-RateLimit-Limit") is None for r in answers)
        assert [r.status for r in other] == [200, 200, 200, 429]
    finally:
        await up.close()


async def test_a_client_without_the_header_gets_503_naming_route_and_rule(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(tmp_path, up.port, limited(3, "1s", PeriodTimespan=1), glob=LEGACY_GLOBAL)
        async with running(cfg) as gw:
            answer = await get(gw.port, client="spy", header="bla-bla-header")
            empty = await get(gw.port, client="")
        assert answer.status == 503
        assert answer.json() == {
            "code": 428,
            "codemessage": "ClientNotIdentified",
            "message": "Rate limiting client could not be identified for the route "
            "'/ClientRateLimit' due to a missing or unknown client ID header required by "
            "rule '3/1s/w1s'!",
        }
        assert answer.header("Retry-After") == "-1"
        assert empty.status == 503
        assert up.seen == []
    finally:
        await up.close()


async def test_headers_can_be_turned_off(tmp_path: Path) -> None:
    # Ocelot's Should_set_ratelimiting_headers_on_response_when_EnableHeaders_set_to(false)
    up = await RecordingUpstream().start()
    try:
        route = limited(3, "100s", PeriodTimespan=1000, EnableHeaders=False)
        cfg = ocelot(tmp_path, up.port, route, glob=LEGACY_GLOBAL)
        async with running(cfg) as gw:
            answers = [await get(gw.port) for _ in range(4)]
            unknown = await get(gw.port, client=None)
        assert [r.status for r in answers] == [200, 200, 200, 429]
        for answer in answers:
            assert answer.header("X-RateLimit-Limit") is None
            assert answer.header("Retry-After") is None
        assert (unknown.status, unknown.header("Retry-After")) == (503, None)
    finally:
        await up.close()


async def test_global_options_apply_to_routes_without_their_own(tmp_path: Path) -> None:
    # Should_apply_global_options_when_there_are_no_route_opts / ..._group_global_options_...
    up = await RecordingUpstream().start()
    try:
        glob = {**LEGACY_GLOBAL, "Limit": 3, "Period": "1s", "Wait": "500ms", "RouteKeys": ["R2"]}
        cfg = ocelot(
            tmp_path,
            up.port,
            {"UpstreamPathTemplate": "/rateUnlimited"},
            {"UpstreamPathTemplate": "/rateLimited", "Key": "R2"},
            glob=glob,
        )
        async with running(cfg) as gw:
            free = [(await get(gw.port, "/rateUnlimited")).status for _ in range(4)]
            capped = [(await get(gw.port, "/rateLimited")).status for _ in range(4)]
            await asyncio.sleep(0.25)
            during = await get(gw.port, "/rateLimited")
            await asyncio.sleep(0.3)
            after = await get(gw.port, "/rateLimited")
        assert free == [200] * 4
        assert capped == [200, 200, 200, 429]
        assert (during.status, during.json()["message"]) == (429, "Exceeding!")  # type: ignore[index]
        assert 0.1 < float(during.header("Retry-After") or "0") < 0.3
        assert after.status == 200
    finally:
        await up.close()


async def test_status_code_and_quota_message_format(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        route = limited(
            1,
            "20s",
            StatusCode=418,
            QuotaMessage="Out of coffee! Only {0} cup every {1}, {{sorry}}.",
            ClientIdHeader="X-Api-Key",
        )
        cfg = ocelot(tmp_path, up.port, route)
        async with running(cfg) as gw:
            ok = await get(gw.port, client="k1", header="X-Api-Key")
            teapot = await get(gw.port, client="k1", header="x-api-key")
        assert ok.status == 200
        assert teapot.status == 418
        assert teapot.json() == {
            "code": 427,
            "codemessage": "RateLimited",
            "message": "Out of coffee! Only 1 cup every 20s, {sorry}.",
        }
    finally:
        await up.close()


async def test_the_limit_zero_trap_refuses_everything_and_check_says_so(tmp_path: Path) -> None:
    # A pre-24.1 global block (only ClientIdHeader and a message) enables Limit 0 everywhere.
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(tmp_path, up.port, {}, glob=LEGACY_GLOBAL)
        trap = [w for w in cfg.warnings if w.path == "GlobalConfiguration.RateLimitOptions"]
        assert len(trap) == 1 and "EVERY request there is refused" in trap[0].message
        async with running(cfg) as gw:
            with_id = await get(gw.port)
            without = await get(gw.port, client=None)
        assert (with_id.status, without.status) == (429, 503)
        assert up.seen == []
    finally:
        await up.close()


async def test_counters_are_per_client_and_per_route(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(
            tmp_path,
            up.port,
            {"UpstreamPathTemplate": "/a", **limited(1, "20s")},
            {"UpstreamPathTemplate": "/b", **limited(1, "20s")},
            glob={"ClientIdHeader": "ClientId"},
        )
        async with running(cfg) as gw:
            statuses = [
                (await get(gw.port, path, client)).status
                for path, client in [("/a", "c1"), ("/a", "c2"), ("/b", "c1"), ("/a", "c1")]
            ]
        assert statuses == [200, 200, 200, 429]
    finally:
        await up.close()
