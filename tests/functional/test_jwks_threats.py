"""Header members that point at keys are never followed (design.md s.4: jku, x5u, jwk).

The attacker runs a real key server and names it in the token; it must see no request, and
the token must fail, whichever kind of provider verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from propylon.auth import Authenticator, AuthFailure
from propylon.config.model import JwtProviderSpec

ISSUER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ISSUER_PEM = ISSUER_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}


class KeyServer:
    """Serves one JWKS at every path and counts the requests it gets."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.paths: list[str] = []
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def _serve(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        return web.json_response({"keys": self.keys})

    async def start(self) -> KeyServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@asynccontextmanager
async def scene() -> AsyncIterator[tuple[Authenticator, KeyServer, KeyServer]]:
    """The issuer's JWKS, the attacker's key server, and a gateway with a JWKS provider and a
    PEM provider for the issuer."""
    issuer = await KeyServer([public_jwk(ISSUER_KEY, "issuer-1")]).start()
    attacker = await KeyServer([public_jwk(ATTACKER_KEY, "issuer-1")]).start()
    auth = Authenticator(
        {
            "jwks": JwtProviderSpec(
                "jwks",
                ("RS256",),
                jwks_url=issuer.base + "/.well-known/jwks.json",
                jwks_min_refresh_interval=0.0,
                jwks_timeout=1.0,
            ),
            "pem": JwtProviderSpec("pem", ("RS256",), public_key_pem=ISSUER_PEM),
        }
    )
    await auth.start()
    try:
        yield auth, issuer, attacker
    finally:
        await auth.close()
        await issuer.stop()
        await attacker.stop()


def forged(kid: str | None, **headers: Any) -> list[bytes]:
    payload = {"sub": "root", "exp": int(time.time()) + 600, "scope": "admin"}
    if kid is not None:
        headers["kid"] = kid
    return [
        b"Bearer " + jwt.encode(payload, ATTACKER_KEY, algorithm="RS256", headers=headers).encode()
    ]


@pytest.mark.parametrize("member", ["jku", "x5u"])
@pytest.mark.parametrize("kid", ["issuer-1", "attacker-kid", None])
async def test_jku_and_x5u_are_never_fetched(member: str, kid: str | None) -> None:
    async with scene() as (auth, issuer, attacker):
        fetched_at_start = list(issuer.paths)
        headers = {member: attacker.base + "/keys.json"}
        for provider in ("jwks", "pem"):
            with pytest.raises(AuthFailure):
                await auth.authenticate_async(forged(kid, **headers), (provider,))
        assert attacker.paths == []
        # Any refresh went to the configured URL, never to the one in the token.
        assert set(issuer.paths) == {"/.well-known/jwks.json"}
        assert len(issuer.paths) <= len(fetched_at_start) + 1


async def test_an_embedded_jwk_or_x5c_is_not_used() -> None:
    async with scene() as (auth, _issuer, attacker):
        embedded = public_jwk(ATTACKER_KEY, "issuer-1")
        cert_like = base64.b64encode(b"not really a certificate").decode()
        for headers in ({"jwk": embedded}, {"x5c": [cert_like]}):
            for provider in ("jwks", "pem"):
                with pytest.raises(AuthFailure):
                    await auth.authenticate_async(forged("issuer-1", **headers), (provider,))
        assert attacker.paths == []


async def test_hs256_signed_with_a_published_jwks_key_is_refused() -> None:
    async with scene() as (auth, _issuer, _attacker):
        header = {"alg": "HS256", "typ": "JWT", "kid": "issuer-1"}
        payload = {"sub": "root", "exp": int(time.time()) + 600}

        def b64(data: bytes) -> bytes:
            return base64.urlsafe_b64encode(data).rstrip(b"=")

        unsigned = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(payload).encode())
        for secret in (ISSUER_PEM, json.dumps(public_jwk(ISSUER_KEY, "issuer-1")).encode()):
            mac = b64(hmac.new(secret, unsigned, hashlib.sha256).digest())
            for provider in ("jwks", "pem"):
                with pytest.raises(AuthFailure) as refused:
                    await auth.authenticate_async([b"Bearer " + unsigned + b"." + mac], (provider,))
                assert refused.value.reason == "algorithm not allowed"


async def test_the_genuine_issuer_still_gets_in() -> None:
    async with scene() as (auth, _issuer, _attacker):
        payload = {"sub": "alice", "exp": int(time.time()) + 600}
        genuine = jwt.encode(payload, ISSUER_KEY, algorithm="RS256", headers={"kid": "issuer-1"})
        for provider in ("jwks", "pem"):
            principal = auth.authenticate([b"Bearer " + genuine.encode()], (provider,))
            assert principal.subject == "alice"
