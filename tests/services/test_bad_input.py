"""Bad input gets a clear answer, never a 500: out-of-range ids, text a database cannot
store, a nonsense DATABASE_URL, a malformed signing key."""

from __future__ import annotations

from pathlib import Path

import pytest
from identity.app import create_app
from servicekit.serving import ServiceThread

from tests.services.client import ServiceClient
from tests.services.conftest import identity_settings
from tests.services.processes import CHEAP_ARGON2, refused_start
from tests.services.test_profiles import create, someone


@pytest.mark.parametrize("profile_id", ["2147483648", "99999999999999999999999", "0", "-5"])
def test_ids_no_profile_can_have_are_not_found(profiles: ServiceClient, profile_id: str) -> None:
    # Before: 2**31 and up was a 500 on PostgreSQL (integer out of range), and 10**22 a 500
    # on SQLite (too large for its integers).
    me = profiles.as_user(someone())
    for method in ("GET", "PATCH", "DELETE"):
        body = {"bio": "x"} if method == "PATCH" else None
        reply = me.call(method, f"/profiles/{profile_id}", body)
        assert reply.envelope == (404, 406, "ObjectNotFound"), (method, reply.body)
    assert me.get(f"/profiles/{profile_id}/avatar").status == 404


NOT_TEXT = "must not contain NUL characters or unpaired surrogates."


def test_nul_and_lone_surrogates_are_validation_errors(
    identity: ServiceClient, profiles: ServiceClient
) -> None:
    # Before: a NUL byte was a 500 on PostgreSQL, including as a login username.
    login = identity.post("/auth/token", {"username": "ad\u0000min", "password": "whatever1"})
    assert login.envelope == (400, 403, "ValidationError")
    assert login.json["data"] == {"Username": [f"'Username' {NOT_TEXT}"]}

    surrogate = identity.post("/auth/token", {"username": "x", "password": "bad \ud800 text"})
    assert surrogate.json["data"] == {"Password": [f"'Password' {NOT_TEXT}"]}

    me = profiles.as_user(someone())
    created = me.post("/profiles", {"display_name": "Ada\u0000", "bio": "ok"})
    assert created.status == 400
    assert created.json["data"] == {"DisplayName": [f"'DisplayName' {NOT_TEXT}"]}
    profile = create(me)
    patched = me.patch(f"/profiles/{profile['id']}", {"location": "\u0000"})
    assert patched.json["data"] == {"Location": [f"'Location' {NOT_TEXT}"]}


def test_nul_in_a_path_username_is_not_found(identity: ServiceClient) -> None:
    from tests.services.conftest import ADMIN

    reply = identity.as_user(ADMIN).patch("/auth/users/ad%00min/role", {"role": "admin"})
    assert reply.envelope == (404, 406, "ObjectNotFound")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nonsense", "identity: DATABASE_URL is not a database URL"),
        ("nosuch://x/y", "identity: DATABASE_URL names an unknown database dialect or driver"),
    ],
)
def test_a_bad_database_url_is_one_line_naming_the_variable(
    url: str, expected: str, tmp_path: Path
) -> None:
    refusal = refused_start("identity", {"DATABASE_URL": url, "IDENTITY_DATA_DIR": str(tmp_path)})
    assert refusal.returncode == 2
    assert len(refusal.lines) == 1, refusal.output
    assert refusal.lines[0].startswith(expected)


def test_profiles_names_a_bad_database_url_too(tmp_path: Path) -> None:
    refusal = refused_start("profiles", {"DATABASE_URL": "::", "PROFILES_DATA_DIR": str(tmp_path)})
    assert refusal.lines == [
        "profiles: DATABASE_URL is not a database URL (e.g. sqlite:///data/service.db or "
        "postgresql+psycopg://user@host/db)"
    ]


def test_a_bad_number_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    refusal = refused_start(
        "identity", {"IDENTITY_DATA_DIR": str(tmp_path), "IDENTITY_HASH_QUEUE": "lots"}
    )
    assert refusal.lines == ["identity: IDENTITY_HASH_QUEUE must be a whole number, got 'lots'"]


def test_a_malformed_signing_key_stops_the_start_and_names_the_file(tmp_path: Path) -> None:
    # Before: the service started, and then login and the JWKS were 500s.
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    broken = keys / "signing-key-00000000000000000001.pem"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    refusal = refused_start(
        "identity",
        {
            "IDENTITY_DATA_DIR": str(tmp_path),
            "IDENTITY_KEYS_DIR": str(keys),
            "IDENTITY_MIGRATE": "true",
            **CHEAP_ARGON2,
        },
    )
    assert "Traceback" not in refusal.output
    [line] = [line for line in refusal.lines if "unusable signing key file" in line]
    assert str(broken) in line


def test_a_malformed_key_added_while_running_is_left_out(tmp_path: Path) -> None:
    settings = identity_settings(f"sqlite:///{tmp_path / 'i.db'}", tmp_path / "keys")
    with ServiceThread(create_app(settings)) as service:
        identity = ServiceClient(service.url)
        (tmp_path / "keys" / "signing-key-99999999999999999999.pem").write_text("garbage")
        jwks = identity.get("/auth/.well-known/jwks.json")
        login = identity.post("/auth/token", {"username": "root-admin", "password": "x"})
    assert jwks.status == 200 and len(jwks.json["keys"]) == 1
    assert login.status == 401  # answered (wrong password), not a 500


def test_a_retired_setting_is_refused_not_ignored(tmp_path: Path) -> None:
    refusal = refused_start(
        "identity", {"IDENTITY_DATA_DIR": str(tmp_path), "IDENTITY_LOGIN_LOCKOUT_SECONDS": "300"}
    )
    assert len(refusal.lines) == 1
    assert refusal.lines[0].startswith("identity: IDENTITY_LOGIN_LOCKOUT_SECONDS is no longer used")
