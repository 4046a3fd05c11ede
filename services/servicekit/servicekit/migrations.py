"""Alembic glue: apply a service's migrations from code, run its env.py, check the schema.

Each service keeps its own version table (`<service>_alembic_version`) and revision ids
prefixed with its name, so two services can share one database: with Alembic's default
`alembic_version` and the same first revision id, the second service found "head" already
applied and ran without tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, engine_from_config, inspect, pool, text

from servicekit.database import prepare_sqlite_file

LEGACY_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True, slots=True)
class MigrationHistory:
    """Where a service's migrations are, and which version table records them."""

    script_location: Path
    version_table: str
    # Databases migrated before the per-service version tables recorded `legacy_revision`
    # in the shared `alembic_version`. Such a database is adopted (its own table stamped at
    # `adopt_as`) when `marker_table`, created by that first migration, exists.
    legacy_revision: str | None = None
    adopt_as: str | None = None
    marker_table: str | None = None

    def config(self, url: str) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.script_location))
        # ConfigParser interpolation would eat a literal '%' in a password.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return config

    def heads(self) -> tuple[str, ...]:
        script = ScriptDirectory(str(self.script_location))
        return tuple(sorted(script.get_heads()))


def upgrade_to_head(history: MigrationHistory, url: str) -> None:
    prepare_sqlite_file(url)
    command.upgrade(history.config(url), "head")


def _adopt_legacy(connection: Connection, history: MigrationHistory) -> None:
    if not (history.legacy_revision and history.adopt_as and history.marker_table):
        return
    tables = set(inspect(connection).get_table_names())
    if history.version_table in tables or LEGACY_VERSION_TABLE not in tables:
        return
    if history.marker_table not in tables:
        return  # the legacy record belongs to another service: this one has no tables yet
    recorded = connection.execute(
        text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")  # noqa: S608 (a constant)
    ).scalars()
    if history.legacy_revision in set(recorded):
        ctx = MigrationContext.configure(connection, opts={"version_table": history.version_table})
        ctx.stamp(ScriptDirectory(str(history.script_location)), history.adopt_as)


def run_env(target_metadata: MetaData, default_url: str, history: MigrationHistory) -> None:
    """The body of each service's migrations/env.py."""

    def own_tables(name: str | None, kind: str, _parent: object) -> bool:
        # In a shared database the other service's tables are not ours to drop: autogenerate
        # compares only the tables this service's models define.
        return kind != "table" or name in target_metadata.tables

    config = context.config
    url = config.get_main_option("sqlalchemy.url") or default_url
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=target_metadata,
            literal_binds=True,
            version_table=history.version_table,
            include_name=own_tables,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    prepare_sqlite_file(url)
    connectable = engine_from_config(
        {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        with connection.begin():
            _adopt_legacy(connection, history)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            version_table=history.version_table,
            include_name=own_tables,
        )
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


class SchemaCheck:
    """Readiness: is the database's recorded revision this code's head?"""

    def __init__(self, history: MigrationHistory) -> None:
        self.history = history
        self.expected = history.heads()

    def problem(self, connection: Connection) -> str | None:
        """None when the schema is at head, else why not (for the log and /healthz)."""
        current = MigrationContext.configure(
            connection, opts={"version_table": self.history.version_table}
        ).get_current_heads()
        if tuple(sorted(current)) == self.expected:
            return None
        expected = ", ".join(self.expected)
        if not current:
            return (
                f"the database has no {self.history.version_table} record (expected {expected}):"
                " run the migrations (--migrate, or alembic upgrade head)"
            )
        found = ", ".join(sorted(current))
        return (
            f"the database schema is at {found}, this version needs {expected}:"
            " run the migrations (--migrate, or alembic upgrade head)"
        )
