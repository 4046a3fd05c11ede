"""Headers the gateway owns never come from the client (security review, items 2, 10, 12).

A header a framework trusts as a fact (who the caller is, what URL was asked for, where the
request came from) is either set by the gateway or removed, whatever spelling the client
uses: underscores for dashes (CGI/WSGI read ``X_Role`` as ``X-Role``), or one of the
forwarding headers frameworks honour.
"""

from __future__ import annotations

import pytest

from propylon.config.model import ClaimHeader, ForwardingPolicy
from tests.support.client import request
from tests.support.gateway import BEARER, config, route, running, token
from tests.support.upstreams import RecordingUpstream

CLIENT_FACTS = [
    ("X-Real-IP", "6.6.6.6"),
    ("X-Client-IP", "6.6.6.6"),
    ("True-Client-IP", "6.6.6.6"),
    ("X-Forwarded-Port", "1"),
    ("X-Forwarded-Prefix", "/admin"),
    ("X-Forwarded-Ssl", "on"),
    ("X-Original-URL", "/admin/users"),
    ("X-Rewrite-URL", "/admin/users"),
]


def _claims_route(port: int, **kw: object) -> object:
    return route(
        "/p",
        port,
        auth=BEARER,
        claim_headers=(ClaimHeader("X-Role", "role"),),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "spoof", ["X_Role", "x_role", "X_Request_Id", "X_Forwarded_For", "X_Real_IP"]
)
async def test_underscore_aliases_of_gateway_headers_never_pass(spoof: str) -> None:
    up = await RecordingUpstream().start()
    try:
        # Even a route that forwards underscored names drops one that reads as ours.
        async with running(config(_claims_route(up.port, allow_underscores=True))) as gw:
            r = await request(
                gw.port,
                "GET",
                "/p",
                [("Authorization", f"Bearer {token('alice', role='user')}"), (spoof, "admin")],
            )
            assert r.status == 200
        assert spoof.lower() not in [k.lower() for k, _ in up.last.headers]
        assert up.last.headers_named("X-Role") == ["user"]
        assert "admin" not in [v for k, v in up.last.headers if k.lower() != "authorization"]
    finally:
        await up.close()


async def test_underscored_names_are_dropped_unless_allowed() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/strict", up.port),
            route("/lenient", up.port, allow_underscores=True),
        )
        async with running(cfg) as gw:
            for path in ("/strict", "/lenient"):
                r = await request(gw.port, "GET", path, [("X_Legacy_Key", "k1"), ("X-Ok", "1")])
                assert r.status == 200
                seen = up.last
                assert seen.header("X-Ok") == "1"
                assert seen.header("X_Legacy_Key") == ("k1" if path == "/lenient" else None)
        # The global switch, and a route saying no to it.
        cfg = config(
            route("/any", up.port),
            route("/not-here", up.port, allow_underscores=False),
            forwarding=ForwardingPolicy(allow_underscores=True),
        )
        async with running(cfg) as gw:
            await request(gw.port, "GET", "/any", [("X_Legacy_Key", "k2")])
            assert up.last.header("X_Legacy_Key") == "k2"
            await request(gw.port, "GET", "/not-here", [("X_Legacy_Key", "k3")])
            assert up.last.header("X_Legacy_Key") is None
    finally:
        await up.close()


async def test_forwarding_facts_from_a_client_are_replaced_by_the_gateways() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            r = await request(
                gw.port,
                "GET",
                "/x",
                [*CLIENT_FACTS, ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https")],
            )
            assert r.status == 200
            seen = up.last
            for name, _value in CLIENT_FACTS:
                assert "6.6.6.6" not in seen.headers_named(name), name
            assert seen.headers_named("X-Real-IP") == ["127.0.0.1"]
            assert seen.headers_named("X-Forwarded-Port") == [str(gw.port)]
            assert seen.headers_named("X-Forwarded-For") == ["127.0.0.1"]
            assert seen.headers_named("X-Forwarded-Proto") == ["http"]
            for name in ("X-Client-IP", "True-Client-IP", "X-Original-URL", "X-Rewrite-URL"):
                assert seen.header(name) is None
    finally:
        await up.close()


async def test_the_strip_list_is_configurable() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/x", up.port),
            forwarding=ForwardingPolicy(strip_client_headers=("X-Tenant",)),
        )
        async with running(cfg) as gw:
            await request(gw.port, "GET", "/x", [("X-Tenant", "other"), ("X-Original-URL", "/y")])
        assert up.last.header("X-Tenant") is None
        assert up.last.header("X-Original-URL") == "/y"  # the list replaces the default
    finally:
        await up.close()


async def test_a_trusted_proxy_speaks_for_the_client_and_no_one_else_does() -> None:
    up = await RecordingUpstream().start()
    facts = [
        ("X-Forwarded-For", "203.0.113.7, 10.0.0.5"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "api.example.com"),
        ("X-Forwarded-Port", "443"),
    ]
    try:
        trusted = config(route("/x", up.port), trusted_proxies=("127.0.0.0/8", "10.0.0.0/8"))
        async with running(trusted) as gw:
            await request(gw.port, "GET", "/x", facts)
            seen = up.last
            assert seen.headers_named("X-Forwarded-For") == ["203.0.113.7, 10.0.0.5, 127.0.0.1"]
            assert seen.headers_named("X-Real-IP") == ["203.0.113.7"]
            assert seen.headers_named("X-Forwarded-Proto") == ["https"]
            assert seen.headers_named("X-Forwarded-Host") == ["api.example.com"]
            assert seen.headers_named("X-Forwarded-Port") == ["443"]
        # The same headers from a peer that is not a trusted proxy count for nothing.
        untrusted = config(route("/x", up.port), trusted_proxies=("10.0.0.0/8",))
        async with running(untrusted) as gw:
            await request(gw.port, "GET", "/x", facts, host="gw.test")
            seen = up.last
            assert seen.headers_named("X-Forwarded-For") == ["127.0.0.1"]
            assert seen.headers_named("X-Real-IP") == ["127.0.0.1"]
            assert seen.headers_named("X-Forwarded-Proto") == ["http"]
            assert seen.headers_named("X-Forwarded-Host") == ["gw.test"]
            assert seen.headers_named("X-Forwarded-Port") == [str(gw.port)]
    finally:
        await up.close()


async def test_stats_behind_a_trusted_proxy_judge_the_forwarded_client() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port), trusted_proxies=("127.0.0.0/8",))
        async with running(cfg) as gw:
            # A sidecar or nginx on the same host forwards a remote client: not loopback.
            r = await request(gw.port, "GET", "/stats", [("X-Forwarded-For", "198.51.100.9")])
            assert r.status == 403
            r = await request(gw.port, "GET", "/stats")
            assert r.status == 200
        # Without trusted proxies, the header is the client's word and changes nothing.
        async with running(config(route("/x", up.port))) as gw:
            r = await request(gw.port, "GET", "/stats", [("X-Forwarded-For", "198.51.100.9")])
            assert r.status == 200
    finally:
        await up.close()
