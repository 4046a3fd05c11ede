"""Real services on 127.0.0.1 (ephemeral ports), each module against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from identity.app import create_app as create_identity
from identity.settings import IdentitySettings
from profiles.app import create_app as create_profiles
from profiles.settings import ProfilesSettings
from servicekit.serving import ServiceThread

from tests.services.client import ServiceClient
from tests.services.databases import BACKENDS, scratch_database

ADMIN = "root-admin"
ADMIN_PASSWORD = "correct horse battery staple"


def identity_settings(database_url: str, keys_dir: Path, **overrides: object) -> IdentitySettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "keys_dir": keys_dir,
        "audience": "propylon",
        # Cheap argon2 for speed; the defaults stay RFC 9106 grade.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "admin_username": ADMIN,
        "admin_password": ADMIN_PASSWORD,
        "migrate_on_start": True,
        "login_max_failures": 3,
        "login_window_seconds": 60,
        # Every test's client is 127.0.0.1: only the per-(user, client) rule is tight here;
        # tests of the other rules start services of their own.
        "login_client_max_failures": 100_000,
        "login_user_max_failures": 100_000,
        "register_max_per_window": 100_000,
    }
    values.update(overrides)
    return IdentitySettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def identity_service(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceClient, IdentitySettings]]:
    directory = tmp_path_factory.mktemp("identity")
    with scratch_database(backend, directory, "identity") as url:
        settings = identity_settings(url, directory / "keys")
        with ServiceThread(create_identity(settings)) as service:
            yield ServiceClient(service.url), settings


@pytest.fixture
def identity(identity_service: tuple[ServiceClient, IdentitySettings]) -> ServiceClient:
    return identity_service[0]


def profiles_settings(database_url: str, media_dir: Path, **overrides: object) -> ProfilesSettings:
    values: dict[str, object] = {
        "database_url": database_url,
        "media_dir": media_dir,
        "trust_role_header": True,
        "migrate_on_start": True,
        "max_avatar_bytes": 8 * 1024 * 1024,
    }
    values.update(overrides)
    return ProfilesSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def profiles_service(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceClient, ProfilesSettings]]:
    directory = tmp_path_factory.mktemp("profiles")
    with scratch_database(backend, directory, "profiles") as url:
        settings = profiles_settings(url, directory / "media")
        with ServiceThread(create_profiles(settings)) as service:
            yield ServiceClient(service.url), settings


@pytest.fixture
def profiles(profiles_service: tuple[ServiceClient, ProfilesSettings]) -> ServiceClient:
    return profiles_service[0]
