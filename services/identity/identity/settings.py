"""Identity service settings, read once from the environment and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from servicekit.environment import env_bool, env_int, env_optional, env_str

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    database_url: str
    keys_dir: Path
    issuer: str = "propylon-identity"
    audience: str | None = None
    access_ttl_seconds: int = 15 * 60
    refresh_ttl_seconds: int = 14 * 24 * 3600
    # argon2-cffi's defaults (RFC 9106 "low memory"): t=3, 64 MiB, p=4. Tests lower them.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    login_max_failures: int = 5
    login_window_seconds: int = 300
    login_lockout_seconds: int = 300
    admin_username: str | None = None
    admin_password: str | None = None
    migrate_on_start: bool = False
    user_header: str = "User"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IdentitySettings:
        env = os.environ if environ is None else environ
        data_dir = Path(env_str(env, "IDENTITY_DATA_DIR", "data"))
        return cls(
            database_url=env_str(env, "DATABASE_URL", f"sqlite:///{data_dir / 'identity.db'}"),
            keys_dir=Path(env_str(env, "IDENTITY_KEYS_DIR", str(data_dir / "keys"))),
            issuer=env_str(env, "IDENTITY_ISSUER", "propylon-identity"),
            audience=env_optional(env, "IDENTITY_AUDIENCE"),
            access_ttl_seconds=env_int(env, "IDENTITY_ACCESS_TTL_SECONDS", 900, minimum=1),
            refresh_ttl_seconds=env_int(
                env, "IDENTITY_REFRESH_TTL_SECONDS", 14 * 24 * 3600, minimum=1
            ),
            argon2_time_cost=env_int(env, "IDENTITY_ARGON2_TIME_COST", 3, minimum=1),
            argon2_memory_kib=env_int(env, "IDENTITY_ARGON2_MEMORY_KIB", 65536, minimum=8),
            argon2_parallelism=env_int(env, "IDENTITY_ARGON2_PARALLELISM", 4, minimum=1),
            login_max_failures=env_int(env, "IDENTITY_LOGIN_MAX_FAILURES", 5, minimum=1),
            login_window_seconds=env_int(env, "IDENTITY_LOGIN_WINDOW_SECONDS", 300, minimum=1),
            login_lockout_seconds=env_int(env, "IDENTITY_LOGIN_LOCKOUT_SECONDS", 300, minimum=1),
            admin_username=env_optional(env, "IDENTITY_ADMIN_USERNAME"),
            admin_password=env_optional(env, "IDENTITY_ADMIN_PASSWORD"),
            migrate_on_start=env_bool(env, "IDENTITY_MIGRATE", False),
            user_header=env_str(env, "IDENTITY_USER_HEADER", "User"),
        )
