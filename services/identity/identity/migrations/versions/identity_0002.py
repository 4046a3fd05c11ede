"""Absolute session lifetime on refresh tokens; retired usernames.

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2025-01-15
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0002"
down_revision: str | None = "identity_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("session_expires_at", sa.DateTime(timezone=True), nullable=True))
    # Sessions that exist already end when their current token would have.
    op.execute("UPDATE refresh_tokens SET session_expires_at = expires_at")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.alter_column(
            "session_expires_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
    op.create_table(
        "retired_usernames",
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_retired_usernames"),
    )


def downgrade() -> None:
    op.drop_table("retired_usernames")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("session_expires_at")
