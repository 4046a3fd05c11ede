"""JWKS providers against a real JWKS server on 127.0.0.1: start, refresh, rotation, outages."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from propylon.auth import Authenticator, AuthFailure, KeyRefreshNeeded
from propylon.config.model import JwtProviderSpec

RSA_1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def jwk(key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**data, "kid": kid, **extra}


def token(key: Any, kid: str, alg: str = "RS256", sub: str = "alice") -> list[bytes]:
    """The Authorization header values of a request carrying a fresh token."""
    payload = {"sub": sub, "exp": int(time.time()) + 600}
    return [b"Bearer " + jwt.encode(payload, key, algorithm=alg, headers={"kid": kid}).encode()]


class JwksServer:
    """Serves ``keys`` as a JWKS and counts requests; can fail, hang or be stopped."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.hits = 0
        self.status = 200
        self.hang = False
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _serve(self, _request: web.Request) -> web.StreamResponse:
        self.hits += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.status != 200:
            return web.Response(status=self.status, text="down for maintenance")
        return web.json_response({"keys": self.keys})

    async def start(self) -> JwksServer:
        app = web.Application()
        app.router.add_get("/jwks", self._serve)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"


def spec(server: JwtProviderSpec | JwksServer, **overrides: Any) -> JwtProviderSpec:
    assert isinstance(server, JwksServer)
    settings: dict[str, Any] = {
        "algorithms": ("RS256", "ES256", "EdDSA"),
        "jwks_refresh_interval": 60.0,
        "jwks_min_refresh_interval": 60.0,
        "jwks_timeout": 2.0,
    }
    settings.update(overrides)
    return JwtProviderSpec("idp", jwks_url=server.url, **settings)


@asynccontextmanager
async def serving(*keys: dict[str, Any]) -> AsyncIterator[JwksServer]:
    server = await JwksServer(*keys).start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def started(provider: JwtProviderSpec) -> AsyncIterator[Authenticator]:
    auth = Authenticator({"idp": provider})
    await auth.start()
    try:
        yield auth
    finally:
        await auth.close()


async def test_keys_are_fetched_at_start_and_each_key_type_verifies() -> None:
    keys = (jwk(RSA_1, "r"), jwk(EC_KEY, "e"), jwk(ED_KEY, "o"))
    async with serving(*keys) as server, started(spec(server)) as auth:
        assert server.hits == 1
        assert auth.authenticate(token(RSA_1, "r"), ("idp",)).subject == "alice"
        assert auth.authenticate(token(EC_KEY, "e", "ES256"), ("idp",)).provider == "idp"
        assert auth.authenticate(token(ED_KEY, "o", "EdDSA"), ("idp",)).subject == "alice"
        assert server.hits == 1


async def test_an_unknown_kid_triggers_one_refresh_then_not_again_within_the_interval() -> None:
    async with serving(jwk(RSA_1, "k1")) as server, started(spec(server)) as auth:
        server.keys.append(jwk(RSA_2, "k2"))
        with pytest.raises(KeyRefreshNeeded):
            auth.authenticate(token(RSA_2, "k2"), ("idp",))
        principal = await auth.authenticate_async(token(RSA_2, "k2"), ("idp",))
        assert principal.subject == "alice"
        assert server.hits == 2

        with pytest.raises(AuthFailure) as refused:  # within the minimum interval
            auth.authenticate(token(RSA_2, "k3"), ("idp",))
        assert type(refused.value) is AuthFailure
        with pytest.raises(AuthFailure):
            await auth.authenticate_async(token(RSA_2, "k3"), ("idp",))
        assert server.hits == 2


async def test_a_refresh_leaves_no_exception_being_handled() -> None:
    # The compiled authenticator once awaited the refresh inside its except block, which left
    # KeyRefreshNeeded as the worker's exception being handled: every later exception
    # chained onto it (and a growing chain of them, one per unknown kid). It shows when
    # requests wait for the refresh together, as they do in a gateway.
    async with serving(jwk(RSA_1, "k1")) as server, started(spec(server)) as auth:
        server.keys.append(jwk(RSA_2, "k2"))
        waiting = [auth.authenticate_async(token(RSA_2, "k2"), ("idp",)) for _ in range(5)]
        principals = await asyncio.gather(*(asyncio.ensure_future(w) for w in waiting))
        assert {p.subject for p in principals} == {"alice"}
        await asyncio.sleep(0)
        assert sys.exc_info() == (None, None, None)
        with pytest.raises(AuthFailure) as refused:
            await auth.authenticate_async(token(RSA_2, "k3"), ("idp",))
        assert refused.value.__context__ is None
        try:
            raise LookupError("unrelated")
        except LookupError as unrelated:
            assert unrelated.__context__ is None


async def test_concurrent_unknown_kids_share_one_fetch() -> None:
    async with serving(jwk(RSA_1, "k1")) as server, started(spec(server)) as auth:
        server.keys.append(jwk(RSA_2, "k2"))
        results = await asyncio.gather(
            *(auth.authenticate_async(token(RSA_2, "k2", sub=f"u{i}"), ("idp",)) for i in range(20))
        )
        assert {p.subject for p in results} == {f"u{i}" for i in range(20)}
        assert server.hits == 2


async def test_a_flood_of_invented_kids_costs_at_most_one_fetch_per_interval() -> None:
    async with serving(jwk(RSA_1, "k1")) as server, started(spec(server)) as auth:
        outcomes = await asyncio.gather(
            *(auth.authenticate_async(token(RSA_2, f"kid-{i}"), ("idp",)) for i in range(50)),
            return_exceptions=True,
        )
        assert all(isinstance(o, AuthFailure) for o in outcomes)
        for i in range(20):  # one after another, each would be worth a fetch on its own
            with pytest.raises(AuthFailure):
                await auth.authenticate_async(token(RSA_2, f"later-{i}"), ("idp",))
        assert server.hits == 2


async def test_rotation_new_key_verifies_after_refresh_old_one_while_still_published() -> None:
    async with serving(jwk(RSA_1, "old")) as server:
        provider = spec(server, jwks_min_refresh_interval=0.0)
        async with started(provider) as auth:
            old_token = token(RSA_1, "old")
            assert auth.authenticate(old_token, ("idp",)).subject == "alice"
            server.keys.append(jwk(RSA_2, "new"))
            assert (await auth.authenticate_async(token(RSA_2, "new"), ("idp",))).subject
            assert auth.authenticate(token(RSA_1, "old"), ("idp",)).subject == "alice"

            # The issuer withdraws the old key: after the next refresh its tokens fail,
            # including the one the cache already held.
            server.keys = [jwk(RSA_2, "new")]
            with pytest.raises(KeyRefreshNeeded):
                auth.authenticate(token(RSA_1, "gone"), ("idp",))
            await auth.authenticate_async(token(RSA_2, "new"), ("idp",))
            with pytest.raises(AuthFailure):
                await auth.authenticate_async(token(RSA_1, "gone"), ("idp",))
            with pytest.raises(AuthFailure):
                auth.authenticate(old_token, ("idp",))


async def test_stale_keys_are_kept_while_the_jwks_server_is_down() -> None:
    async with (
        serving(jwk(RSA_1, "k1")) as server,
        started(spec(server, jwks_min_refresh_interval=0.0)) as auth,
    ):
        server.status = 503
        with pytest.raises(AuthFailure):
            await auth.authenticate_async(token(RSA_2, "unknown"), ("idp",))
        assert server.hits == 2  # it did try
        assert auth.authenticate(token(RSA_1, "k1", sub="bob"), ("idp",)).subject == "bob"

        await server.stop()  # now nothing listens at all
        with pytest.raises(AuthFailure):
            await auth.authenticate_async(token(RSA_2, "unknown"), ("idp",))
        assert auth.authenticate(token(RSA_1, "k1", sub="carol"), ("idp",)).subject == "carol"
        source = auth.verifiers["idp"].jwks
        assert source is not None and source.fetches == 3


async def test_a_jwks_server_that_is_down_at_start_does_not_stop_the_gateway() -> None:
    async with serving(jwk(RSA_1, "k1")) as server:
        server.status = 500
        async with started(spec(server, jwks_min_refresh_interval=0.0)) as auth:
            with pytest.raises(AuthFailure):
                await auth.authenticate_async(token(RSA_1, "k1"), ("idp",))
            server.status = 200  # keys arrive: the same token now verifies
            assert (await auth.authenticate_async(token(RSA_1, "k1"), ("idp",))).subject


async def test_background_refresh_follows_the_interval() -> None:
    async with serving(jwk(RSA_1, "k1")) as server:
        async with started(spec(server, jwks_refresh_interval=0.1)) as auth:
            server.keys.append(jwk(RSA_2, "k2"))
            await asyncio.sleep(0.55)
            hits = server.hits
            assert 4 <= hits <= 7  # the fetch at start plus about five
            # Picked up in the background: no refresh was needed for the new key.
            assert auth.authenticate(token(RSA_2, "k2"), ("idp",)).subject == "alice"
        await asyncio.sleep(0.25)
        assert server.hits == hits  # close() stopped the loop


async def test_a_hung_jwks_server_is_bounded_by_the_timeout() -> None:
    async with serving(jwk(RSA_1, "k1")) as server:
        server.hang = True
        provider = spec(server, jwks_timeout=0.2, jwks_min_refresh_interval=0.0)
        began = time.monotonic()
        async with started(provider) as auth:
            assert time.monotonic() - began < 1.5
            began = time.monotonic()
            with pytest.raises(AuthFailure):
                await auth.authenticate_async(token(RSA_1, "k1"), ("idp",))
            assert time.monotonic() - began < 1.5
            assert server.hits == 2


async def test_a_key_whose_alg_differs_from_the_token_alg_is_not_used() -> None:
    async with (
        serving(jwk(RSA_1, "k1", alg="RS256")) as server,
        started(spec(server, algorithms=("RS256", "PS256"))) as auth,
    ):
        assert auth.authenticate(token(RSA_1, "k1", "RS256"), ("idp",)).subject
        with pytest.raises(AuthFailure) as refused:
            auth.authenticate(token(RSA_1, "k1", "PS256"), ("idp",))
        assert type(refused.value) is AuthFailure  # no refresh for a known kid
        assert server.hits == 1
