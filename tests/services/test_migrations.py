"""The Alembic head of each service matches its models, on SQLite and PostgreSQL, and
`alembic upgrade head` works from the service directory as the seed describes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from identity.models import Base as IdentityBase
from identity.settings import MIGRATIONS_DIR as IDENTITY_MIGRATIONS
from profiles.models import Base as ProfilesBase
from profiles.settings import MIGRATIONS_DIR as PROFILES_MIGRATIONS
from servicekit.migrations import upgrade_to_head
from sqlalchemy import MetaData, create_engine, inspect

from tests.services.databases import BACKENDS, scratch_database

SERVICES = {
    "identity": (IDENTITY_MIGRATIONS, IdentityBase.metadata),
    "profiles": (PROFILES_MIGRATIONS, ProfilesBase.metadata),
}
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_head_matches_the_models(backend: str, service: str, tmp_path: Path) -> None:
    script_location, metadata = SERVICES[service]
    with scratch_database(backend, tmp_path, service) as url:
        upgrade_to_head(script_location, url)
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                diff = compare_metadata(context, metadata)
                tables = set(inspect(connection).get_table_names())
        finally:
            engine.dispose()
    assert diff == []
    assert set(metadata.tables) | {"alembic_version"} == tables


def test_an_empty_model_would_show_a_diff(tmp_path: Path) -> None:
    # The comparison above is only worth something if it can see a difference.
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade_to_head(IDENTITY_MIGRATIONS, url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), MetaData())
    engine.dispose()
    assert diff


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
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert set(SERVICES[service][1].tables) <= set(inspect(connection).get_table_names())
    engine.dispose()
