"""A stage that waits (PENDING) and resumes, through the real gateway: a token whose ``kid``
the JWKS provider does not know yet makes the authentication stage wait for the key-set
refresh, then the chain goes on from there, with the request body that arrived meanwhile."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from types import MappingProxyType

from propylon.config.model import AuthRequirement
from tests.functional.test_jwks_refresh import RSA_1, RSA_2, JwksServer, jwk, spec, token
from tests.support.client import request
from tests.support.gateway import config, route, running
from tests.support.upstreams import RecordingUpstream

IDP = AuthRequirement(providers=("idp",))


async def test_an_unknown_kid_waits_for_the_refresh_then_the_request_goes_on() -> None:
    keys = await JwksServer(jwk(RSA_1, "k1")).start()
    up = await RecordingUpstream().start()
    try:
        cfg = replace(
            config(route("/orders", up.port, methods=("POST",), auth=IDP)),
            providers=MappingProxyType({"idp": spec(keys, jwks_min_refresh_interval=0.0)}),
        )
        async with running(cfg) as gw:
            assert keys.hits == 1
            keys.keys.append(jwk(RSA_2, "k2"))  # rotated at the identity provider
            body = b"x" * 300_000  # more than the connection buffers before pausing
            header = token(RSA_2, "k2", sub="bob")[0].decode()
            r = await request(gw.port, "POST", "/orders", [("Authorization", header)], body)
            assert r.status == 200
            assert keys.hits == 2
            assert up.last.header("User") == "bob"
            assert up.last.body_len == len(body)
            assert up.last.body_sha256 == hashlib.sha256(body).hexdigest()

            # A kid that the refresh does not bring: 401 once the keys are in, nothing sent.
            header = token(RSA_2, "never-published")[0].decode()
            r = await request(gw.port, "POST", "/orders", [("Authorization", header)], b"{}")
            assert r.status == 401
            assert r.header("WWW-Authenticate") == 'Bearer error="invalid_token"'
            assert len(up.seen) == 1
    finally:
        await up.close()
        await keys.stop()


async def test_a_client_that_leaves_while_its_request_waits_costs_nothing() -> None:
    keys = await JwksServer(jwk(RSA_1, "k1")).start()
    up = await RecordingUpstream().start()
    try:
        cfg = replace(
            config(route("/orders", up.port, auth=IDP)),
            providers=MappingProxyType({"idp": spec(keys, jwks_min_refresh_interval=0.0)}),
        )
        async with running(cfg) as gw:
            keys.hang = True  # the refresh will take until its timeout
            keys.keys.append(jwk(RSA_2, "k2"))
            header = token(RSA_2, "k2")[0]
            _reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(
                b"GET /orders HTTP/1.1\r\nHost: t\r\nAuthorization: " + header + b"\r\n\r\n"
            )
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()  # gone while the stage waits
            keys.hang = False
            # The refresh ends (timeout 2 s); the flow finds nobody to answer and stops.
            await asyncio.sleep(2.3)
            assert up.seen == []
            # The worker is fine: the same token works now that keys arrive.
            r = await request(gw.port, "GET", "/orders", [("Authorization", header.decode())])
            assert r.status == 200
    finally:
        await up.close()
        await keys.stop()
