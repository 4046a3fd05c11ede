"""Identity service settings, read once from the environment and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.assertion import GatewayTrust
from servicekit.environment import (
    Network,
    SettingError,
    env_bool,
    env_database_url,
    env_int,
    env_networks,
    env_optional,
    env_str,
    refuse_retired,
)
from servicekit.migrations import MigrationHistory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATIONS = MigrationHistory(
    MIGRATIONS_DIR,
    version_table="identity_alembic_version",
    legacy_revision="0001_initial",
    adopt_as="identity_0001",
    marker_table="users",
)
# The gateway on the same host (make run, the services' default bind): its X-Forwarded-For
# is believed. Elsewhere, name the gateway's addresses in IDENTITY_TRUSTED_PROXIES.
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1/32", "::1/128")


def _loopback() -> tuple[Network, ...]:
    return env_networks({}, "IDENTITY_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES)


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    database_url: str
    keys_dir: Path
    issuer: str = "propylon-identity"
    audience: str | None = None
    access_ttl_seconds: int = 15 * 60
    refresh_ttl_seconds: int = 14 * 24 * 3600
    # A login's refresh family ends this long after the login, however often it is used.
    session_max_seconds: int = 30 * 24 * 3600
    token_purge_interval_seconds: int = 3600
    # argon2-cffi's defaults (RFC 9106 "low memory"): t=3, 64 MiB, p=4. Tests lower them.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    # At most this many argon2 computations at once (each holds argon2_memory_kib), with at
    # most hash_queue requests waiting for one; beyond that, 503 ServiceBusy.
    hash_concurrency: int = 2
    hash_queue: int = 16
    # The login throttle (identity.throttle): free failures, then doubling delays from
    # base up to max, per (username, client) and per client; per username across clients
    # the delay stays short (it slows a distributed guesser, it never locks the owner out).
    login_max_failures: int = 5
    login_client_max_failures: int = 30
    login_user_max_failures: int = 100
    login_base_delay_seconds: int = 1
    login_max_delay_seconds: int = 900
    login_user_max_delay_seconds: int = 5
    login_window_seconds: int = 900
    register_max_per_window: int = 20
    register_window_seconds: int = 3600
    redis_url: str | None = None
    redis_prefix: str = "identity:"
    trusted_proxies: tuple[Network, ...] = field(default_factory=_loopback)
    admin_username: str | None = None
    admin_password: str | None = None
    migrate_on_start: bool = False
    user_header: str = "User"
    gateway: GatewayTrust = field(default_factory=lambda: GatewayTrust(audience="identity"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IdentitySettings:
        env = os.environ if environ is None else environ
        refuse_retired(
            env,
            "IDENTITY_LOGIN_LOCKOUT_SECONDS",
            "logins are slowed by growing delays, not locked out (see "
            "IDENTITY_LOGIN_MAX_DELAY_SECONDS in services/README.md)",
        )
        data_dir = Path(env_str(env, "IDENTITY_DATA_DIR", "data"))
        redis_url = env_optional(env, "IDENTITY_REDIS_URL")
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingError("IDENTITY_REDIS_URL must be a redis://, rediss:// or unix:// URL")
        return cls(
            database_url=env_database_url(
                env, "DATABASE_URL", f"sqlite:///{data_dir / 'identity.db'}"
            ),
            keys_dir=Path(env_str(env, "IDENTITY_KEYS_DIR", str(data_dir / "keys"))),
            issuer=env_str(env, "IDENTITY_ISSUER", "propylon-identity"),
            audience=env_optional(env, "IDENTITY_AUDIENCE"),
            access_ttl_seconds=env_int(env, "IDENTITY_ACCESS_TTL_SECONDS", 900, minimum=1),
            refresh_ttl_seconds=env_int(
                env, "IDENTITY_REFRESH_TTL_SECONDS", 14 * 24 * 3600, minimum=1
            ),
            session_max_seconds=env_int(
                env, "IDENTITY_SESSION_MAX_SECONDS", 30 * 24 * 3600, minimum=1
            ),
            token_purge_interval_seconds=env_int(
                env, "IDENTITY_TOKEN_PURGE_INTERVAL_SECONDS", 3600, minimum=1
            ),
            argon2_time_cost=env_int(env, "IDENTITY_ARGON2_TIME_COST", 3, minimum=1),
            argon2_memory_kib=env_int(env, "IDENTITY_ARGON2_MEMORY_KIB", 65536, minimum=8),
            argon2_parallelism=env_int(env, "IDENTITY_ARGON2_PARALLELISM", 4, minimum=1),
            hash_concurrency=env_int(env, "IDENTITY_HASH_CONCURRENCY", 2, minimum=1),
            hash_queue=env_int(env, "IDENTITY_HASH_QUEUE", 16, minimum=0),
            login_max_failures=env_int(env, "IDENTITY_LOGIN_MAX_FAILURES", 5, minimum=1),
            login_client_max_failures=env_int(
                env, "IDENTITY_LOGIN_CLIENT_MAX_FAILURES", 30, minimum=1
            ),
            login_user_max_failures=env_int(
                env, "IDENTITY_LOGIN_USER_MAX_FAILURES", 100, minimum=1
            ),
            login_base_delay_seconds=env_int(
                env, "IDENTITY_LOGIN_BASE_DELAY_SECONDS", 1, minimum=1
            ),
            login_max_delay_seconds=env_int(
                env, "IDENTITY_LOGIN_MAX_DELAY_SECONDS", 900, minimum=1
            ),
            login_user_max_delay_seconds=env_int(
                env, "IDENTITY_LOGIN_USER_MAX_DELAY_SECONDS", 5, minimum=1
            ),
            login_window_seconds=env_int(env, "IDENTITY_LOGIN_WINDOW_SECONDS", 900, minimum=1),
            register_max_per_window=env_int(env, "IDENTITY_REGISTER_MAX_PER_WINDOW", 20, minimum=1),
            register_window_seconds=env_int(
                env, "IDENTITY_REGISTER_WINDOW_SECONDS", 3600, minimum=1
            ),
            redis_url=redis_url,
            redis_prefix=env_str(env, "IDENTITY_REDIS_PREFIX", "identity:"),
            trusted_proxies=env_networks(env, "IDENTITY_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES),
            admin_username=env_optional(env, "IDENTITY_ADMIN_USERNAME"),
            admin_password=env_optional(env, "IDENTITY_ADMIN_PASSWORD"),
            migrate_on_start=env_bool(env, "IDENTITY_MIGRATE", False),
            user_header=env_str(env, "IDENTITY_USER_HEADER", "User"),
            gateway=GatewayTrust.from_env(env, "IDENTITY_GATEWAY_AUDIENCE", "identity"),
        )
