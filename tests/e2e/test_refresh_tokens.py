"""Refresh tokens through the gateway: rotation, reuse detection, revocation; and the JWKS."""

from __future__ import annotations

import jwt

from tests.e2e.api import GatewayApi
from tests.e2e.stack import ISSUER


async def _refresh(api: GatewayApi, refresh_token: str) -> tuple[int, str, dict[str, str]]:
    reply = await api.call("POST", "/auth/token/refresh", json={"refresh_token": refresh_token})
    body = reply.json()
    return reply.status, body["codemessage"], body.get("data") or {}


async def test_refresh_rotates_and_reuse_revokes_the_family(api: GatewayApi) -> None:
    account = await api.sign_up("rotor")

    status, message, first = await _refresh(api, account.refresh_token)
    assert (status, message) == (200, "TokenRefreshed")
    assert first["refresh_token"] != account.refresh_token
    # The new access token is good at the gateway.
    listed = await api.call("GET", "/profiles", token=first["access_token"])
    assert listed.status == 200, listed

    # The rotated token works once...
    status, message, second = await _refresh(api, first["refresh_token"])
    assert (status, message) == (200, "TokenRefreshed")

    # ...and presenting it again means a copy exists: refused, and the family ends with it.
    assert (await _refresh(api, first["refresh_token"]))[:2] == (401, "BadTokenRequest")
    assert (await _refresh(api, second["refresh_token"]))[:2] == (401, "BadTokenRequest")
    assert (await _refresh(api, account.refresh_token))[:2] == (401, "BadTokenRequest")


async def test_revoked_refresh_token_cannot_refresh(api: GatewayApi) -> None:
    account = await api.sign_up("revoker")

    revoked = await api.call(
        "POST", "/auth/token/revoke", json={"refresh_token": account.refresh_token}
    )
    assert revoked.status == 200 and revoked.codemessage == "TokenRevoked", revoked

    assert (await _refresh(api, account.refresh_token))[:2] == (401, "BadTokenRequest")
    # A later login starts a new family that is unaffected.
    again = await api.log_in(account.username, account.password)
    assert (await _refresh(api, again.refresh_token))[:2] == (200, "TokenRefreshed")


async def test_revoking_an_unknown_token_looks_the_same(api: GatewayApi) -> None:
    reply = await api.call("POST", "/auth/token/revoke", json={"refresh_token": "never-issued"})
    assert reply.status == 200 and reply.codemessage == "TokenRevoked", reply


async def test_jwks_through_the_gateway_verifies_issued_tokens(api: GatewayApi) -> None:
    account = await api.sign_up("jwks")

    reply = await api.call("GET", "/auth/.well-known/jwks.json")
    assert reply.status == 200, reply
    keys = jwt.PyJWKSet.from_dict(reply.json())
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)

    claims = jwt.decode(account.access_token, key.key, algorithms=["RS256"], issuer=ISSUER)
    assert claims["sub"] == account.username
    assert claims["role"] == "user"
    # Only public material is published.
    assert all("d" not in jwk for jwk in reply.json()["keys"])
