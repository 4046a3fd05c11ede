"""Identity: login, no user enumeration, throttling, refresh rotation and reuse, revocation."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import jwt
from identity.app import create_app
from servicekit.serving import ServiceThread

from tests.services.client import ServiceClient
from tests.services.conftest import ADMIN, ADMIN_PASSWORD, identity_settings
from tests.services.test_identity_users import PASSWORD, fresh_name, make_user


def login(identity: ServiceClient, name: str, password: str = PASSWORD) -> dict[str, Any]:
    reply = identity.post("/auth/token", {"username": name, "password": password})
    assert reply.envelope == (200, 200, "LoginSuccess"), reply.body
    data: dict[str, Any] = reply.json["data"]
    return data


def verify(identity: ServiceClient, token: str) -> dict[str, Any]:
    jwks = jwt.PyJWKSet.from_dict(identity.get("/auth/.well-known/jwks.json").json)
    key = jwks[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience="propylon", issuer="propylon-identity"
    )
    return claims


def test_login_returns_tokens_the_jwks_verifies(identity: ServiceClient) -> None:
    name = make_user(identity)
    data = login(identity, name)
    assert set(data) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert (data["token_type"], data["expires_in"]) == ("Bearer", 900)
    header = jwt.get_unverified_header(data["access_token"])
    assert header["alg"] == "RS256"
    claims = verify(identity, data["access_token"])
    assert claims["sub"] == name
    assert claims["role"] == "user"
    assert claims["scope"] == "profiles:read profiles:write"
    assert claims["exp"] - claims["iat"] == 900
    assert len(claims["jti"]) == 32


def test_admin_token_carries_admin_role_and_scope(identity: ServiceClient) -> None:
    claims = verify(identity, login(identity, ADMIN, ADMIN_PASSWORD)["access_token"])
    assert claims["role"] == "admin"
    assert "users:admin" in claims["scope"].split()


def test_jwks_publishes_public_keys_only(identity: ServiceClient) -> None:
    keys = identity.get("/auth/.well-known/jwks.json").json["keys"]
    assert keys
    for key in keys:
        assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
        assert key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_wrong_password_and_unknown_user_look_the_same(identity: ServiceClient) -> None:
    name = make_user(identity)
    wrong = identity.post("/auth/token", {"username": name, "password": "not the password"})
    unknown = identity.post("/auth/token", {"username": fresh_name(), "password": "whatever1"})
    assert wrong.status == unknown.status == 401
    assert (
        wrong.json
        == unknown.json
        == {
            "code": 400,
            "codemessage": "BadLoginRequest",
            "message": "Invalid username or password.",
        }
    )


def test_wrong_password_and_unknown_user_take_similar_time(tmp_path: Path) -> None:
    # Argon2 made costly enough (~10+ ms) that skipping it for unknown users would show.
    settings = identity_settings(
        f"sqlite:///{tmp_path / 'timing.db'}",
        tmp_path / "keys",
        argon2_time_cost=2,
        argon2_memory_kib=16384,
        login_max_failures=1000,
    )
    with ServiceThread(create_app(settings)) as service:
        identity = ServiceClient(service.url)
        name = make_user(identity)

        def timed(username: str) -> float:
            started = time.perf_counter()
            reply = identity.post("/auth/token", {"username": username, "password": "wrong-pass"})
            assert reply.status == 401
            return time.perf_counter() - started

        wrong = statistics.median(timed(name) for _ in range(9))
        unknown = statistics.median(timed(fresh_name()) for _ in range(9))
    assert 0.5 < wrong / unknown < 2.0, (wrong, unknown)


def test_repeated_failures_throttle_that_username(identity: ServiceClient) -> None:
    name = make_user(identity)
    for _ in range(3):  # login_max_failures in the test settings
        bad = identity.post("/auth/token", {"username": name, "password": "wrong-pass"})
        assert bad.status == 401
    slowed = identity.post("/auth/token", {"username": name, "password": PASSWORD})
    assert slowed.envelope == (429, 410, "LoginThrottled")
    assert int(slowed.headers["Retry-After"]) == 1  # the first of the doubling delays
    # Another user is unaffected.
    login(identity, make_user(identity))


def test_refresh_rotates_the_refresh_token(identity: ServiceClient) -> None:
    name = make_user(identity)
    first = login(identity, name)
    reply = identity.post("/auth/token/refresh", {"refresh_token": first["refresh_token"]})
    assert reply.envelope == (200, 201, "TokenRefreshed")
    second = reply.json["data"]
    assert second["refresh_token"] != first["refresh_token"]
    assert verify(identity, second["access_token"])["sub"] == name
    third = identity.post("/auth/token/refresh", {"refresh_token": second["refresh_token"]})
    assert third.status == 200


def test_reusing_a_refresh_token_revokes_its_family(identity: ServiceClient) -> None:
    first = login(identity, make_user(identity))
    rotated = identity.post("/auth/token/refresh", {"refresh_token": first["refresh_token"]})
    newest = rotated.json["data"]["refresh_token"]

    reuse = identity.post("/auth/token/refresh", {"refresh_token": first["refresh_token"]})
    assert reuse.envelope == (401, 402, "BadTokenRequest")
    # The legitimate-looking newest token died with its family.
    after = identity.post("/auth/token/refresh", {"refresh_token": newest})
    assert after.envelope == (401, 402, "BadTokenRequest")


def test_other_sessions_survive_a_reuse(identity: ServiceClient) -> None:
    name = make_user(identity)
    one, other = login(identity, name), login(identity, name)
    identity.post("/auth/token/refresh", {"refresh_token": one["refresh_token"]})
    identity.post("/auth/token/refresh", {"refresh_token": one["refresh_token"]})
    survivor = identity.post("/auth/token/refresh", {"refresh_token": other["refresh_token"]})
    assert survivor.status == 200


def test_revoke_ends_the_refresh_token(identity: ServiceClient) -> None:
    tokens = login(identity, make_user(identity))
    revoked = identity.post("/auth/token/revoke", {"refresh_token": tokens["refresh_token"]})
    assert revoked.json == {"code": 202, "codemessage": "TokenRevoked", "message": "Token revoked."}
    assert revoked.status == 200
    refused = identity.post("/auth/token/refresh", {"refresh_token": tokens["refresh_token"]})
    assert refused.envelope == (401, 402, "BadTokenRequest")


def test_revoking_an_unknown_token_reveals_nothing(identity: ServiceClient) -> None:
    reply = identity.post("/auth/token/revoke", {"refresh_token": "never-issued"})
    assert reply.envelope == (200, 202, "TokenRevoked")


def test_unknown_and_empty_refresh_tokens(identity: ServiceClient) -> None:
    unknown = identity.post("/auth/token/refresh", {"refresh_token": "never-issued"})
    assert unknown.envelope == (401, 402, "BadTokenRequest")
    empty = identity.post("/auth/token/refresh", {"refresh_token": ""})
    assert empty.status == 400
    assert empty.json["data"] == {"RefreshToken": ["'RefreshToken' must not be empty."]}


def test_expired_refresh_token_is_refused(tmp_path: Path) -> None:
    settings = identity_settings(
        f"sqlite:///{tmp_path / 'expiry.db'}", tmp_path / "keys", refresh_ttl_seconds=1
    )
    with ServiceThread(create_app(settings)) as service:
        identity = ServiceClient(service.url)
        tokens = login(identity, make_user(identity))
        time.sleep(1.1)
        reply = identity.post("/auth/token/refresh", {"refresh_token": tokens["refresh_token"]})
    assert reply.envelope == (401, 402, "BadTokenRequest")
    assert "expired" in reply.json["message"]
