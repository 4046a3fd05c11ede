"""Account lifecycle: password change and admin reset (ending sessions), log out everywhere,
deletion with retired names, at least one admin, absolute session lifetime, the purge of
dead refresh tokens, unknown fields, file permissions, and the OpenAPI document."""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

from identity.app import create_app
from servicekit.serving import ServiceThread
from sqlalchemy import create_engine, text

from tests.services.client import ServiceClient
from tests.services.conftest import ADMIN, ADMIN_PASSWORD, identity_settings
from tests.services.test_identity_tokens import login
from tests.services.test_identity_users import PASSWORD, fresh_name, make_user


def refresh(identity: ServiceClient, token: str) -> int:
    return identity.post("/auth/token/refresh", {"refresh_token": token}).status


def test_changing_the_password_ends_every_other_session(identity: ServiceClient) -> None:
    name = make_user(identity)
    laptop, phone = login(identity, name), login(identity, name)
    me = identity.as_user(name)
    changed = me.post(
        "/auth/me/password", {"current_password": PASSWORD, "new_password": "a brand new password"}
    )
    assert changed.envelope == (200, 206, "DataUpdated"), changed.body
    fresh_tokens = changed.json["data"]
    assert set(fresh_tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert refresh(identity, laptop["refresh_token"]) == 401
    assert refresh(identity, phone["refresh_token"]) == 401
    assert refresh(identity, fresh_tokens["refresh_token"]) == 200  # this session goes on
    assert identity.post("/auth/token", {"username": name, "password": PASSWORD}).status == 401
    login(identity, name, "a brand new password")


def test_a_password_change_needs_the_current_password(identity: ServiceClient) -> None:
    name = make_user(identity)
    me = identity.as_user(name)
    wrong = me.post(
        "/auth/me/password", {"current_password": "not it at all", "new_password": "whatever new"}
    )
    assert wrong.envelope == (403, 400, "BadLoginRequest")
    same = me.post("/auth/me/password", {"current_password": PASSWORD, "new_password": name})
    assert same.status == 400
    assert same.json["data"] == {
        "NewPassword": ["'NewPassword' must not be the same as 'Username'."]
    }
    short = me.post("/auth/me/password", {"current_password": PASSWORD, "new_password": "short"})
    assert "NewPassword" in short.json["data"]
    assert identity.post(
        "/auth/me/password", {"current_password": "x", "new_password": "y" * 9}
    ).envelope == (
        401,
        405,
        "Unauthorized",
    )


def test_log_out_everywhere(identity: ServiceClient) -> None:
    name = make_user(identity)
    sessions = [login(identity, name) for _ in range(3)]
    reply = identity.as_user(name).post("/auth/token/revoke-all")
    assert reply.envelope == (200, 202, "TokenRevoked")
    assert [refresh(identity, s["refresh_token"]) for s in sessions] == [401, 401, 401]
    login(identity, name)  # logging in again works


def test_an_admin_resets_a_password_and_ends_the_sessions(identity: ServiceClient) -> None:
    name = make_user(identity)
    session = login(identity, name)
    admin = identity.as_user(ADMIN)
    reset = admin.call("PUT", f"/auth/users/{name}/password", {"password": "set by the admin"})
    assert reset.envelope == (200, 206, "DataUpdated")
    assert refresh(identity, session["refresh_token"]) == 401
    login(identity, name, "set by the admin")
    refused = identity.as_user(name).call(
        "PUT", f"/auth/users/{ADMIN}/password", {"password": "taken over"}
    )
    assert refused.envelope == (403, 409, "Restricted")
    missing = admin.call("PUT", "/auth/users/nobody-at-all/password", {"password": "whatever pw"})
    assert missing.envelope == (404, 406, "ObjectNotFound")


def test_deleting_an_account_retires_its_name(identity: ServiceClient) -> None:
    name = make_user(identity)
    session = login(identity, name)
    me = identity.as_user(name)
    assert me.call("DELETE", "/auth/me", {"password": "not the password"}).status == 403
    deleted = me.call("DELETE", "/auth/me", {"password": PASSWORD})
    assert deleted.envelope == (200, 205, "DataDeleted")
    assert refresh(identity, session["refresh_token"]) == 401
    assert identity.post("/auth/token", {"username": name, "password": PASSWORD}).status == 401
    # Data elsewhere (profiles) is keyed by username: a newcomer must not inherit it.
    again = identity.post("/auth/users", {"username": name, "password": "newcomer password"})
    assert again.envelope == (409, 408, "NotUnique")
    # A token that outlived its account: the caller has no account.
    gone = me.post("/auth/me/password", {"current_password": PASSWORD, "new_password": "x" * 10})
    assert gone.envelope == (404, 401, "UserNotFound")


def test_an_admin_deletes_a_user(identity: ServiceClient) -> None:
    name = make_user(identity)
    assert identity.as_user(name).call("DELETE", f"/auth/users/{ADMIN}").status == 403
    deleted = identity.as_user(ADMIN).call("DELETE", f"/auth/users/{name}")
    assert deleted.envelope == (200, 205, "DataDeleted")
    assert identity.as_user(ADMIN).call("DELETE", f"/auth/users/{name}").status == 404


def test_the_last_admin_cannot_be_removed_or_demoted(tmp_path: Path) -> None:
    settings = identity_settings(f"sqlite:///{tmp_path / 'i.db'}", tmp_path / "keys")
    with ServiceThread(create_app(settings)) as service:
        admin = ServiceClient(service.url, ADMIN)
        demoted = admin.patch(f"/auth/users/{ADMIN}/role", {"role": "user"})
        removed = admin.call("DELETE", f"/auth/users/{ADMIN}")
        self_removed = admin.call("DELETE", "/auth/me", {"password": ADMIN_PASSWORD})
        still = admin.get("/auth/users")
    for reply in (demoted, removed, self_removed):
        assert reply.envelope == (409, 409, "Restricted"), reply.body
    assert still.status == 200


def test_unknown_fields_are_refused(identity: ServiceClient) -> None:
    # Before: `"role": "admin"` on registration was dropped silently (201, role user).
    reply = identity.post(
        "/auth/users", {"username": fresh_name(), "password": PASSWORD, "role": "admin"}
    )
    assert reply.envelope == (400, 403, "ValidationError")
    assert reply.json["data"] == {"Role": ["'Role' is not a recognised field."]}
    extra = identity.post("/auth/token", {"username": "a", "password": "b", "grant_type": "x"})
    assert extra.json["data"] == {"GrantType": ["'GrantType' is not a recognised field."]}


def test_a_session_ends_however_often_it_is_refreshed(tmp_path: Path) -> None:
    # Before: each refresh granted a fresh 14 days, so a session never had to end.
    settings = identity_settings(
        f"sqlite:///{tmp_path / 'i.db'}", tmp_path / "keys", session_max_seconds=2
    )
    with ServiceThread(create_app(settings)) as service:
        identity = ServiceClient(service.url)
        token = login(identity, make_user(identity))["refresh_token"]
        for _ in range(2):
            time.sleep(0.6)
            reply = identity.post("/auth/token/refresh", {"refresh_token": token})
            assert reply.status == 200
            token = reply.json["data"]["refresh_token"]
        time.sleep(1.0)
        over = identity.post("/auth/token/refresh", {"refresh_token": token})
    assert over.envelope == (401, 402, "BadTokenRequest")
    assert "maximum lifetime" in over.json["message"]


def _token_rows(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT used_at, revoked FROM refresh_tokens")).mappings()
        result = [dict(row) for row in rows]
    engine.dispose()
    return result


def test_dead_refresh_tokens_are_purged(tmp_path: Path) -> None:
    # Before: spent and expired refresh tokens stayed in the table for ever.
    url = f"sqlite:///{tmp_path / 'i.db'}"
    settings = identity_settings(
        url, tmp_path / "keys", refresh_ttl_seconds=1, token_purge_interval_seconds=1
    )
    with ServiceThread(create_app(settings)) as service:
        identity = ServiceClient(service.url)
        name = make_user(identity)
        revoked = login(identity, name)
        identity.post("/auth/token/revoke", {"refresh_token": revoked["refresh_token"]})
        login(identity, name)  # expires in a second
        deadline = time.monotonic() + 10
        while _token_rows(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = _token_rows(url)
    assert rows == []


def test_the_database_and_keys_are_owner_only(tmp_path: Path) -> None:
    # Before: identity.db, which holds the password hashes, was created 0644.
    settings = identity_settings(
        f"sqlite:///{tmp_path / 'data' / 'identity.db'}", tmp_path / "keys"
    )
    with ServiceThread(create_app(settings)) as service:
        assert ServiceClient(service.url).get("/healthz").status == 200
    assert stat.S_IMODE((tmp_path / "data" / "identity.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    for key in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_loose_existing_database_file_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "identity.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    settings = identity_settings(f"sqlite:///{database}", tmp_path / "keys")
    with ServiceThread(create_app(settings)):
        pass
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_openapi_describes_what_is_sent(identity: ServiceClient) -> None:
    schema = identity.get("/openapi.json").json
    text_of = str(schema)
    assert "'422'" not in text_of and "HTTPValidationError" not in text_of
    components = schema["components"]["schemas"]
    assert set(components["Envelope"]["properties"]) == {"code", "codemessage", "message", "data"}
    assert components["ValidationFailure"]["properties"]["code"]["const"] == 403
    register = schema["paths"]["/auth/users"]["post"]["responses"]
    assert register["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ValidationFailure"
    )
    assert register["201"]["content"]["application/json"]["schema"]["$ref"].endswith("Envelope")
    listing = schema["paths"]["/auth/users"]["get"]
    user_header = [p for p in listing["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in user_header] == [("User", True)]
    assert "401" in listing["responses"]
    public = schema["paths"]["/auth/token"]["post"]
    assert not [p for p in public.get("parameters", []) if p["in"] == "header"]
