"""Migrations: each service's head matches its models, on SQLite and PostgreSQL; two services
share one database without clashing; readiness says when the schema is not at head; and
`alembic upgrade head` works from the service directory as the seed describes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from identity.app import create_app as create_identity
from identity.models import Base as IdentityBase
from identity.settings import MIGRATIONS as IDENTITY_MIGRATIONS
from profiles.app import create_app as create_profiles
from profiles.models import Base as ProfilesBase
from profiles.settings import MIGRATIONS as PROFILES_MIGRATIONS
from servicekit.migrations import MigrationHistory, upgrade_to_head
from servicekit.serving import ServiceThread
from sqlalchemy import MetaData, create_engine, inspect, text

from tests.services.client import ServiceClient
from tests.services.conftest import ADMIN, ADMIN_PASSWORD, identity_settings, profiles_settings
from tests.services.databases import BACKENDS, scratch_database

SERVICES: dict[str, tuple[MigrationHistory, MetaData]] = {
    "identity": (IDENTITY_MIGRATIONS, IdentityBase.metadata),
    "profiles": (PROFILES_MIGRATIONS, ProfilesBase.metadata),
}
REPO = Path(__file__).resolve().parents[2]


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_head_matches_the_models(backend: str, service: str, tmp_path: Path) -> None:
    history, metadata = SERVICES[service]
    with scratch_database(backend, tmp_path, service) as url:
        upgrade_to_head(history, url)
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(
                    connection,
                    opts={"compare_type": True, "version_table": history.version_table},
                )
                diff = compare_metadata(context, metadata)
                tables = set(inspect(connection).get_table_names())
        finally:
            engine.dispose()
    assert diff == []
    assert set(metadata.tables) | {history.version_table} == tables


def test_an_empty_model_would_show_a_diff(tmp_path: Path) -> None:
    # The comparison above is only worth something if it can see a difference.
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade_to_head(IDENTITY_MIGRATIONS, url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), MetaData())
    engine.dispose()
    assert diff


def test_each_service_has_its_own_version_table_and_revision_ids() -> None:
    identity, profiles = IDENTITY_MIGRATIONS, PROFILES_MIGRATIONS
    assert identity.version_table != profiles.version_table
    assert "alembic_version" not in (identity.version_table, profiles.version_table)
    assert all(head.startswith("identity_") for head in identity.heads())
    assert all(head.startswith("profiles_") for head in profiles.heads())


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_services_share_one_database(backend: str, tmp_path: Path) -> None:
    # Before: both histories were "0001_initial" in the default alembic_version table, so the
    # second service found head applied, had no tables, said it was ready, and answered 500.
    with scratch_database(backend, tmp_path, "shared") as url:
        identity_config = identity_settings(url, tmp_path / "keys")
        profiles_config = profiles_settings(url, tmp_path / "media")
        with (
            ServiceThread(create_identity(identity_config)) as identity_service,
            ServiceThread(create_profiles(profiles_config)) as profiles_service,
        ):
            identity = ServiceClient(identity_service.url)
            profiles = ServiceClient(profiles_service.url)
            assert identity.get("/healthz").status == 200
            assert profiles.get("/healthz").status == 200
            login = identity.post("/auth/token", {"username": ADMIN, "password": ADMIN_PASSWORD})
            assert login.status == 200, login.body
            created = profiles.as_user("someone").post("/profiles", {"display_name": "Ada"})
            assert created.status == 201, created.body
        tables = _tables(url)
    assert {"users", "refresh_tokens", "profiles"} <= tables
    assert {"identity_alembic_version", "profiles_alembic_version"} <= tables


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unmigrated_database_is_not_ready_and_says_why(backend: str, tmp_path: Path) -> None:
    with scratch_database(backend, tmp_path, "bare") as url:
        settings = profiles_settings(url, tmp_path / "media", migrate_on_start=False)
        with ServiceThread(create_profiles(settings)) as service:
            profiles = ServiceClient(service.url)
            health = profiles.get("/healthz")
            request = profiles.as_user("someone").get("/profiles")
    assert health.envelope == (503, 511, "NotReady")
    assert "no profiles_alembic_version record" in health.json["message"]
    assert "run the migrations" in health.json["message"]
    # A request that needs the missing tables is "not ready" too, not an unexplained 500.
    assert request.envelope == (503, 511, "NotReady")


def test_a_schema_behind_head_is_not_ready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    command.upgrade(IDENTITY_MIGRATIONS.config(url), "identity_0001")
    settings = identity_settings(url, tmp_path / "keys", migrate_on_start=False)
    with ServiceThread(create_identity(settings)) as service:
        health = ServiceClient(service.url).get("/healthz")
    assert health.envelope == (503, 511, "NotReady")
    head = IDENTITY_MIGRATIONS.heads()[0]
    assert f"at identity_0001, this version needs {head}" in health.json["message"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_from_before_the_version_tables_is_adopted(backend: str, tmp_path: Path) -> None:
    # What earlier versions left: identity's first tables, recorded as "0001_initial" in the
    # shared alembic_version (and, in a shared database, no profiles tables at all).
    with scratch_database(backend, tmp_path, "legacy") as url:
        command.upgrade(IDENTITY_MIGRATIONS.config(url), "identity_0001")
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                text("ALTER TABLE identity_alembic_version RENAME TO alembic_version")
            )
            if backend == "postgresql":
                connection.execute(
                    text(
                        "ALTER TABLE alembic_version RENAME CONSTRAINT "
                        "identity_alembic_version_pkc TO alembic_version_pkc"
                    )
                )
            connection.execute(text("UPDATE alembic_version SET version_num = '0001_initial'"))
            connection.execute(
                text(
                    "INSERT INTO users (username, password_hash, role, created_at) "
                    "VALUES ('old-user', 'x', 'user', CURRENT_TIMESTAMP)"
                )
            )
        engine.dispose()

        upgrade_to_head(IDENTITY_MIGRATIONS, url)
        upgrade_to_head(PROFILES_MIGRATIONS, url)

        engine = create_engine(url)
        with engine.connect() as connection:
            identity_at = connection.execute(
                text("SELECT version_num FROM identity_alembic_version")
            ).scalar_one()
            profiles_at = connection.execute(
                text("SELECT version_num FROM profiles_alembic_version")
            ).scalar_one()
            kept = connection.execute(text("SELECT username FROM users")).scalars().all()
            tables = set(inspect(connection).get_table_names())
        engine.dispose()
    assert identity_at == IDENTITY_MIGRATIONS.heads()[0]
    assert profiles_at == PROFILES_MIGRATIONS.heads()[0]
    assert kept == ["old-user"]
    assert "profiles" in tables


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_alembic_command_line_upgrade(service: str, tmp_path: Path) -> None:
    database = tmp_path / f"{service}.db"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO / "services" / service,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    history, metadata = SERVICES[service]
    assert set(metadata.tables) | {history.version_table} <= _tables(f"sqlite:///{database}")
