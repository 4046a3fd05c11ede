"""Headers from claims (Ocelot AddHeadersToRequest): injected after verification, never
accepted from a client, on any route."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from propylon.config.loader import load_config
from propylon.config.model import ClaimHeader, GatewayConfig
from tests.support.client import request
from tests.support.gateway import BEARER, SECRET, config, route, running, token
from tests.support.upstreams import RecordingUpstream


@pytest.mark.parametrize("spoof", ["X-User-Role", "x-user-role", "X-USER-ROLE"])
async def test_claim_header_is_set_from_the_token_and_never_from_the_client(spoof: str) -> None:
    up = await RecordingUpstream().start()
    try:
        private = replace(
            route("/profiles", up.port, auth=BEARER),
            claim_headers=(
                ClaimHeader("X-User-Role", "role"),
                ClaimHeader("X-Tenant", "org", index=1, delimiter="|"),
            ),
        )
        cfg = config(route("/public", up.port), private)
        async with running(cfg) as gw:
            await request(gw.port, "GET", "/public", [(spoof, "admin")])
            assert up.last.headers_named("X-User-Role") == []

            t = token("bob", role="user", org="acme|eu-west")
            await request(
                gw.port, "GET", "/profiles", [(spoof, "admin"), ("Authorization", f"Bearer {t}")]
            )
            assert up.last.headers_named("X-User-Role") == ["user"]
            assert up.last.headers_named("X-Tenant") == ["eu-west"]
            assert up.last.header("User") == "bob"

            # No role claim: no header at all, and the client's still does not get through.
            t = token("carol")
            await request(
                gw.port, "GET", "/profiles", [(spoof, "admin"), ("Authorization", f"Bearer {t}")]
            )
            assert up.last.headers_named("X-User-Role") == []
    finally:
        await up.close()


def _ocelot_config(tmp_path: Path, port: int, **route: object) -> GatewayConfig:
    """An Ocelot file through the real loader, with the test secret as its Bearer provider."""
    path = tmp_path / "ocelot.json"
    base = {
        "UpstreamPathTemplate": "/admin",
        "DownstreamPathTemplate": "/admin",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": port}],
        "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
    }
    path.write_text(json.dumps({"Routes": [{**base, **route}]}))
    return load_config(str(path), env={"PROPYLON_JWT_SECRET": SECRET.decode()})


ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


@pytest.mark.parametrize("written", ["Role", "ROLE", ROLE_URI])
async def test_the_claim_that_grants_access_is_the_claim_forwarded(
    tmp_path: Path, written: str
) -> None:
    """The second seed pairs a `role` claim with `"Role": "admin"`: the same spelling in
    AddHeadersToRequest must forward the claim that authorization just accepted."""
    up = await RecordingUpstream().start()
    try:
        cfg = _ocelot_config(
            tmp_path,
            up.port,
            RouteClaimsRequirement={written: "admin"},
            AddHeadersToRequest={"X-User-Role": f"Claims[{written}] > value"},
        )
        async with running(cfg) as gw:
            t = token("ada", role="admin")
            r = await request(gw.port, "GET", "/admin", [("Authorization", f"Bearer {t}")])
            assert r.status == 200
            assert up.last.headers_named("X-User-Role") == ["admin"]
            t = token("bob", role="user")
            r = await request(gw.port, "GET", "/admin", [("Authorization", f"Bearer {t}")])
            assert r.status == 403
            assert len(up.seen) == 1
    finally:
        await up.close()


@pytest.mark.parametrize("name", ["User", "user", "USER"])
async def test_sub_mapped_onto_the_identity_header_reaches_the_upstream_once(
    tmp_path: Path, name: str
) -> None:
    """The usual Ocelot idiom: the upstream got `User: alice` twice (read as "alice, alice")."""
    up = await RecordingUpstream().start()
    try:
        cfg = _ocelot_config(tmp_path, up.port, AddHeadersToRequest={name: "Claims[sub] > value"})
        async with running(cfg) as gw:
            t = token("alice")
            r = await request(
                gw.port, "GET", "/admin", [("Authorization", f"Bearer {t}"), ("User", "mallory")]
            )
            assert r.status == 200
            assert up.last.headers_named("User") == ["alice"]
    finally:
        await up.close()


async def test_native_claim_onto_the_identity_header_reaches_the_upstream_once(
    tmp_path: Path,
) -> None:
    up = await RecordingUpstream().start()
    path = tmp_path / "native.yaml"
    path.write_text(
        "propylon: 1\n"
        "identity_header: X-Caller\n"
        "auth_providers: {Bearer: {secret_env: SECRET}}\n"
        "routes:\n"
        "  - path: /p\n"
        f"    downstream: {{hosts: ['127.0.0.1:{up.port}']}}\n"
        "    auth: {providers: [Bearer]}\n"
        "    claim_headers: {x-caller: sub, X-Role: role}\n"
    )
    try:
        cfg = load_config(str(path), env={"SECRET": SECRET.decode()})
        async with running(cfg) as gw:
            t = token("alice", role="admin")
            r = await request(gw.port, "GET", "/p", [("Authorization", f"Bearer {t}")])
            assert r.status == 200
            assert up.last.headers_named("X-Caller") == ["alice"]
            assert up.last.headers_named("X-Role") == ["admin"]
    finally:
        await up.close()


async def test_another_claim_mapped_onto_the_identity_header_replaces_the_sub(
    tmp_path: Path,
) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = _ocelot_config(
            tmp_path, up.port, AddHeadersToRequest={"User": "Claims[email] > value"}
        )
        async with running(cfg) as gw:
            t = token("alice", email="alice@example.org")
            r = await request(gw.port, "GET", "/admin", [("Authorization", f"Bearer {t}")])
            assert r.status == 200
            assert up.last.headers_named("User") == ["alice@example.org"]
            # A token without the claim names nobody on this route: refused, not sent as sub.
            r = await request(
                gw.port, "GET", "/admin", [("Authorization", f"Bearer {token('bob')}")]
            )
            assert r.status == 403
            assert len(up.seen) == 1
    finally:
        await up.close()
