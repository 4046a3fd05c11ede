"""Everything a request handler needs, built once per application from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.database import Database

from identity.keys import KeyDirectory
from identity.passwords import PasswordVault
from identity.refresh_tokens import RefreshTokenStore
from identity.settings import IdentitySettings
from identity.throttle import LoginThrottle
from identity.tokens import AccessTokenIssuer


@dataclass(frozen=True, slots=True)
class IdentityContext:
    settings: IdentitySettings
    database: Database
    keys: KeyDirectory
    vault: PasswordVault
    access_tokens: AccessTokenIssuer
    refresh_tokens: RefreshTokenStore
    throttle: LoginThrottle

    @classmethod
    def build(cls, settings: IdentitySettings) -> IdentityContext:
        keys = KeyDirectory(settings.keys_dir)
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            keys=keys,
            vault=PasswordVault(
                settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
            ),
            access_tokens=AccessTokenIssuer(
                keys, settings.issuer, settings.audience, settings.access_ttl_seconds
            ),
            refresh_tokens=RefreshTokenStore(settings.refresh_ttl_seconds),
            throttle=LoginThrottle(
                settings.login_max_failures,
                settings.login_window_seconds,
                settings.login_lockout_seconds,
            ),
        )
