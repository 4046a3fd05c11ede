"""IP rules through a real gateway: clients on real sockets from different loopback
addresses (127.0.0.0/8 is all loopback on Linux), IPv6 on ::1, a client that writes its own
X-Forwarded-For, and a trusted proxy that states one."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from propylon.config.loader import load_config
from propylon.config.model import GatewayConfig, IpRules
from tests.support.client import Response, request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RecordingUpstream

RESTRICTED = {
    "code": 409,
    "codemessage": "Restricted",
    "message": "The client address may not use this route.",
}


def ocelot(tmp_path: Path, port: int, routes: list[dict[str, Any]], **glob: Any) -> GatewayConfig:
    items = [
        {
            "UpstreamPathTemplate": path,
            "DownstreamPathTemplate": path,
            "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": port}],
            **keys,
        }
        for path, keys in ((r.pop("path"), r) for r in routes)
    ]
    file = tmp_path / "ocelot.json"
    file.write_text(json.dumps({"Routes": items, "GlobalConfiguration": glob}))
    return load_config(str(file), env={})


def refused(r: Response) -> bool:
    if r.status == 403:
        assert r.json() == RESTRICTED
        assert r.header("Content-Type") == "application/json"
        return True
    assert r.status == 200, r.status
    return False


async def test_ocelot_allow_and_block_lists_judge_the_peer(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(
            tmp_path,
            up.port,
            [
                {"path": "/allowed", "SecurityOptions": {"IPAllowedList": ["127.0.0.2"]}},
                {
                    "path": "/blocked",
                    "SecurityOptions": {"IPBlockedList": ["127.0.0.3", "127.0.0.10-20"]},
                },
                {
                    "path": "/subnet",
                    "SecurityOptions": {"IPAllowedList": ["127.0.1.0/255.255.255.0"]},
                },
                {"path": "/open"},
            ],
        )
        async with running(cfg) as gw:
            cases = [
                ("/allowed", "127.0.0.2", False),
                ("/allowed", "127.0.0.1", True),
                ("/blocked", "127.0.0.3", True),
                ("/blocked", "127.0.0.15", True),
                ("/blocked", "127.0.0.21", False),
                ("/blocked", "127.0.0.1", False),
                ("/subnet", "127.0.1.77", False),
                ("/subnet", "127.0.2.77", True),
                ("/open", "127.0.0.3", False),
            ]
            for path, source, expect_refused in cases:
                before = len(up.seen)
                r = await request(gw.port, "GET", path, source=source)
                assert refused(r) is expect_refused, (path, source)
                # a refused request never reaches the upstream
                assert len(up.seen) == before + (0 if expect_refused else 1), (path, source)
    finally:
        await up.close()


async def test_ocelot_global_rules_with_excluded_allowed_and_a_route_replacing_them(
    tmp_path: Path,
) -> None:
    """Ocelot's SecurityOptionsTests: global allow 30-50 / block 1-100 with
    ExcludeAllowedFromBlocked; a route's own list replaces the global options whole."""
    up = await RecordingUpstream().start()
    try:
        cfg = ocelot(
            tmp_path,
            up.port,
            [
                {"path": "/global"},
                {"path": "/own-allow", "SecurityOptions": {"IPAllowedList": ["127.0.0.55"]}},
                {"path": "/own-block", "SecurityOptions": {"IPBlockedList": ["127.0.0.35"]}},
            ],
            SecurityOptions={
                "IPAllowedList": ["127.0.0.30-50"],
                "IPBlockedList": ["127.0.0.1-100"],
                "ExcludeAllowedFromBlocked": True,
            },
        )
        async with running(cfg) as gw:
            for path, source, expect_refused in [
                ("/global", "127.0.0.35", False),  # Should_call_with_allowed_ip_in_global_config
                ("/global", "127.0.0.55", True),  # Should_block_call_with_blocked_ip_in_global...
                ("/global", "127.0.0.200", True),  # not blocked, but not in the allow list
                (
                    "/own-allow",
                    "127.0.0.55",
                    False,
                ),  # ..._allowed_ip_in_route_config_and_blocked...
                ("/own-allow", "127.0.0.35", True),
                ("/own-block", "127.0.0.35", True),  # ..._blocked_ip_in_route_config_and_allowed...
                ("/own-block", "127.0.0.200", False),
            ]:
                r = await request(gw.port, "GET", path, source=source)
                assert refused(r) is expect_refused, (path, source)
    finally:
        await up.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
async def test_ipv6_clients_are_judged_by_their_address() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/v6-allowed", up.port, ip_rules=IpRules(allowed=("::1",))),
            route("/v6-net-blocked", up.port, ip_rules=IpRules(blocked=("::/64",))),
            route("/v4-only", up.port, ip_rules=IpRules(allowed=("0.0.0.0/0",))),
            route("/range", up.port, ip_rules=IpRules(allowed=("::1-::5",))),
        )
        async with running(cfg, host="::1") as gw:
            for path, expect_refused in [
                ("/v6-allowed", False),
                ("/v6-net-blocked", True),
                ("/v4-only", True),  # an IPv4 rule says nothing about IPv6 clients
                ("/range", False),
            ]:
                r = await request(gw.port, "GET", path, address="::1")
                assert refused(r) is expect_refused, path
            assert up.last.header("X-Real-IP") == "::1"
    finally:
        await up.close()


async def test_a_spoofed_forwarded_for_gains_nothing_unless_the_peer_is_trusted() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/partners", up.port, ip_rules=IpRules(allowed=("203.0.113.0/24",))),
            route("/public", up.port, ip_rules=IpRules(blocked=("198.51.100.66",))),
            trusted_proxies=("127.0.0.2",),
        )
        async with running(cfg) as gw:
            spoof = [("X-Forwarded-For", "203.0.113.7")]
            # an ordinary client claiming a partner's address: its own address is judged
            r = await request(gw.port, "GET", "/partners", spoof, source="127.0.0.1")
            assert refused(r)
            # the same header from the trusted proxy is the proxy's word for its client
            r = await request(gw.port, "GET", "/partners", spoof, source="127.0.0.2")
            assert not refused(r)
            assert up.last.header("X-Real-IP") == "203.0.113.7"
            # a blocked client behind the proxy stays blocked, whatever it writes first
            forged = [("X-Forwarded-For", "203.0.113.7, 198.51.100.66")]
            r = await request(gw.port, "GET", "/public", forged, source="127.0.0.2")
            assert refused(r)
            # and a blocked address in a spoofed header blocks nobody else
            r = await request(
                gw.port,
                "GET",
                "/public",
                [("X-Forwarded-For", "198.51.100.66")],
                source="127.0.0.1",
            )
            assert not refused(r)
    finally:
        await up.close()
