"""Everything a request handler needs, built once per application from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.caller import CallerSource
from servicekit.clients import ClientAddresses
from servicekit.database import Database
from servicekit.migrations import SchemaCheck

from identity.keys import KeyDirectory
from identity.passwords import HashingGate, PasswordVault
from identity.refresh_tokens import RefreshTokenStore
from identity.settings import MIGRATIONS, IdentitySettings
from identity.throttle import LoginPolicy, MemoryStore, RedisStore, Rule, Throttle, ThrottleStore
from identity.tokens import AccessTokenIssuer


def login_policy(settings: IdentitySettings) -> LoginPolicy:
    return LoginPolicy(
        pair=Rule(settings.login_max_failures, settings.login_max_delay_seconds),
        client=Rule(settings.login_client_max_failures, settings.login_max_delay_seconds),
        user=Rule(settings.login_user_max_failures, settings.login_user_max_delay_seconds),
        base_delay=settings.login_base_delay_seconds,
        memory=settings.login_window_seconds,
    )


@dataclass(frozen=True, slots=True)
class IdentityContext:
    settings: IdentitySettings
    database: Database
    schema: SchemaCheck
    keys: KeyDirectory
    vault: PasswordVault
    access_tokens: AccessTokenIssuer
    refresh_tokens: RefreshTokenStore
    throttle: Throttle
    clients: ClientAddresses
    callers: CallerSource

    @classmethod
    def build(cls, settings: IdentitySettings) -> IdentityContext:
        keys = KeyDirectory(settings.keys_dir)
        store: ThrottleStore = (
            RedisStore(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else MemoryStore()
        )
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            schema=SchemaCheck(MIGRATIONS),
            keys=keys,
            vault=PasswordVault(
                settings.argon2_time_cost,
                settings.argon2_memory_kib,
                settings.argon2_parallelism,
                HashingGate(settings.hash_concurrency, settings.hash_queue),
            ),
            access_tokens=AccessTokenIssuer(
                keys, settings.issuer, settings.audience, settings.access_ttl_seconds
            ),
            refresh_tokens=RefreshTokenStore(
                settings.refresh_ttl_seconds, settings.session_max_seconds
            ),
            throttle=Throttle(
                store,
                login_policy(settings),
                settings.register_max_per_window,
                settings.register_window_seconds,
            ),
            clients=ClientAddresses(settings.trusted_proxies),
            # Identity never believes a role header: it reads roles from its own database.
            callers=CallerSource(settings.gateway.verifier(), settings.user_header),
        )
