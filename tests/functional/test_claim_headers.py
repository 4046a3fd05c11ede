"""Headers from claims (Ocelot AddHeadersToRequest): injected after verification, never
accepted from a client, on any route."""

from __future__ import annotations

from dataclasses import replace

import pytest

from propylon.config.model import ClaimHeader
from tests.support.client import request
from tests.support.gateway import BEARER, config, route, running, token
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
