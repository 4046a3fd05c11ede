"""The admin bootstrap (IDENTITY_ADMIN_USERNAME / _PASSWORD) creates an admin only where no
account has that name, never promotes one, and holds the name and password to the
registration rules; a refusal is one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from identity.app import create_app
from servicekit.serving import ServiceThread

from tests.services.client import ServiceClient
from tests.services.conftest import identity_settings
from tests.services.databases import BACKENDS, scratch_database
from tests.services.processes import CHEAP_ARGON2, refused_start

ATTACKER_PASSWORD = "attacker chose this"
OPERATOR_PASSWORD = "the operator's long password"


def _login(identity: ServiceClient, name: str, password: str) -> tuple[int, str | None]:
    reply = identity.post("/auth/token", {"username": name, "password": password})
    if reply.status != 200:
        return reply.status, None
    claims = jwt.decode(reply.json["data"]["access_token"], options={"verify_signature": False})
    return reply.status, str(claims["role"])


def _environment(url: str, directory: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "IDENTITY_DATA_DIR": str(directory),
        "IDENTITY_MIGRATE": "true",
        **CHEAP_ARGON2,
        **extra,
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_account_registered_first_is_not_promoted(backend: str, tmp_path: Path) -> None:
    with scratch_database(backend, tmp_path, "takeover") as url:
        keys = tmp_path / "keys"
        public = identity_settings(url, keys, admin_username=None, admin_password=None)
        with ServiceThread(create_app(public)) as service:
            identity = ServiceClient(service.url)
            taken = identity.post(
                "/auth/users", {"username": "admin", "password": ATTACKER_PASSWORD}
            )
            assert taken.status == 201

        # The operator now starts identity with the bootstrap admin "admin": it must refuse.
        refusal = refused_start(
            "identity",
            _environment(
                url,
                tmp_path,
                IDENTITY_KEYS_DIR=str(keys),
                IDENTITY_ADMIN_USERNAME="admin",
                IDENTITY_ADMIN_PASSWORD=OPERATOR_PASSWORD,
            ),
        )
        assert "Traceback" not in refusal.output
        [reason] = [line for line in refusal.lines if "IDENTITY_ADMIN_USERNAME" in line]
        assert "existing non-admin account 'admin'" in reason
        assert "refusing to promote it" in reason

        with ServiceThread(create_app(public)) as service:
            identity = ServiceClient(service.url)
            assert _login(identity, "admin", ATTACKER_PASSWORD) == (200, "user")
            assert _login(identity, "admin", OPERATOR_PASSWORD)[0] == 401


def test_an_existing_admin_keeps_its_password(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'i.db'}"
    first = identity_settings(
        url, tmp_path / "keys", admin_username="boss", admin_password=OPERATOR_PASSWORD
    )
    with ServiceThread(create_app(first)) as service:
        assert _login(ServiceClient(service.url), "boss", OPERATOR_PASSWORD) == (200, "admin")
    again = identity_settings(
        url, tmp_path / "keys", admin_username="boss", admin_password="some other password"
    )
    with ServiceThread(create_app(again)) as service:
        identity = ServiceClient(service.url)
        assert _login(identity, "boss", OPERATOR_PASSWORD) == (200, "admin")
        assert _login(identity, "boss", "some other password")[0] == 401


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        (
            "Root",
            "s3cr!",
            [
                "IDENTITY_ADMIN_USERNAME: 'Username' must be 3 to 32",
                "IDENTITY_ADMIN_PASSWORD: The length of 'Password' must be at least 8",
            ],
        ),
        (
            "sameasname",
            "sameasname",
            ["IDENTITY_ADMIN_PASSWORD: 'Password' must not be the same as 'Username'."],
        ),
        ("boss", "", ["set both IDENTITY_ADMIN_USERNAME and IDENTITY_ADMIN_PASSWORD, or neither"]),
    ],
)
def test_the_bootstrap_admin_follows_the_registration_rules(
    username: str, password: str, expected: list[str], tmp_path: Path
) -> None:
    refusal = refused_start(
        "identity",
        _environment(
            f"sqlite:///{tmp_path / 'i.db'}",
            tmp_path,
            IDENTITY_ADMIN_USERNAME=username,
            IDENTITY_ADMIN_PASSWORD=password,
        ),
    )
    assert "Traceback" not in refusal.output
    for fragment in expected:
        assert fragment in refusal.output
    assert "s3cr!" not in refusal.output  # the password is never echoed
