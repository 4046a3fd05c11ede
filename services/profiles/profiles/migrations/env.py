"""Alembic environment: DATABASE_URL (or the service default) against profiles' models."""

from servicekit.migrations import run_env

from profiles.models import Base
from profiles.settings import MIGRATIONS, ProfilesSettings

run_env(Base.metadata, ProfilesSettings.from_env().database_url, MIGRATIONS)
