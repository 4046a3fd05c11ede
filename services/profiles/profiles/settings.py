"""Profiles service settings, read once from the environment and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.assertion import GatewayTrust
from servicekit.environment import env_bool, env_database_url, env_int, env_str
from servicekit.migrations import MigrationHistory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATIONS = MigrationHistory(
    MIGRATIONS_DIR,
    version_table="profiles_alembic_version",
    legacy_revision="0001_initial",
    adopt_as="profiles_0001",
    marker_table="profiles",
)


@dataclass(frozen=True, slots=True)
class ProfilesSettings:
    database_url: str
    media_dir: Path
    max_avatar_bytes: int = 8 * 1024 * 1024
    # Off by default: only a gateway that strips this header from clients and sets it from
    # the verified token's role claim may be trusted with it. Ignored when the gateway's
    # assertions are verified: the role then comes from the signed assertion.
    trust_role_header: bool = False
    role_header: str = "X-User-Role"
    user_header: str = "User"
    migrate_on_start: bool = False
    gateway: GatewayTrust = field(default_factory=lambda: GatewayTrust(audience="profiles"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProfilesSettings:
        env = os.environ if environ is None else environ
        data_dir = Path(env_str(env, "PROFILES_DATA_DIR", "data"))
        return cls(
            database_url=env_database_url(
                env, "DATABASE_URL", f"sqlite:///{data_dir / 'profiles.db'}"
            ),
            media_dir=Path(env_str(env, "PROFILES_MEDIA_DIR", str(data_dir / "media"))),
            max_avatar_bytes=env_int(env, "PROFILES_MAX_AVATAR_BYTES", 8 * 1024 * 1024, minimum=1),
            trust_role_header=env_bool(env, "PROFILES_TRUST_ROLE_HEADER", False),
            role_header=env_str(env, "PROFILES_ROLE_HEADER", "X-User-Role"),
            user_header=env_str(env, "PROFILES_USER_HEADER", "User"),
            migrate_on_start=env_bool(env, "PROFILES_MIGRATE", False),
            gateway=GatewayTrust.from_env(env, "PROFILES_GATEWAY_AUDIENCE", "profiles"),
        )
