"""Profiles.

Revision ID: profiles_0001 (recorded as 0001_initial before the per-service version tables)
Revises:
Create Date: 2024-06-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "profiles_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("bio", sa.String(length=1000), nullable=False),
        sa.Column("location", sa.String(length=100), nullable=False),
        sa.Column("avatar_file", sa.String(length=80), nullable=True),
        sa.Column("avatar_type", sa.String(length=32), nullable=True),
        sa.Column("avatar_size", sa.BigInteger(), nullable=True),
        sa.Column("avatar_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_profiles"),
    )
    op.create_index("ix_profiles_owner", "profiles", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_profiles_owner", table_name="profiles")
    op.drop_table("profiles")
