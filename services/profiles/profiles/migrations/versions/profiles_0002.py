"""Profile ids are never reused on SQLite (AUTOINCREMENT).

Without AUTOINCREMENT SQLite gives a new row the largest id in use plus one, so deleting the
newest profile hands its id to the next one. PostgreSQL's sequence never reuses: nothing to
do there.

Revision ID: profiles_0002
Revises: profiles_0001
Create Date: 2025-01-15
"""

from collections.abc import Sequence

from alembic import op

revision: str = "profiles_0002"
down_revision: str | None = "profiles_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Rebuilt as a copy with AUTOINCREMENT; the copy keeps every row and id.
    with op.batch_alter_table(
        "profiles", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "profiles", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
