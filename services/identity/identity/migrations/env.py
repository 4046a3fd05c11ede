"""Alembic environment: DATABASE_URL (or the service default) against identity's models."""

from servicekit.migrations import run_env

from identity.models import Base
from identity.settings import MIGRATIONS, IdentitySettings

run_env(Base.metadata, IdentitySettings.from_env().database_url, MIGRATIONS)
