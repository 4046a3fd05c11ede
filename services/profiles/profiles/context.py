"""Everything a request handler needs, built once per application from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.caller import CallerSource
from servicekit.database import Database
from servicekit.migrations import SchemaCheck

from profiles.avatars import AvatarStore
from profiles.settings import MIGRATIONS, ProfilesSettings


@dataclass(frozen=True, slots=True)
class ProfilesContext:
    settings: ProfilesSettings
    database: Database
    schema: SchemaCheck
    avatars: AvatarStore
    callers: CallerSource

    @classmethod
    def build(cls, settings: ProfilesSettings) -> ProfilesContext:
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            schema=SchemaCheck(MIGRATIONS),
            avatars=AvatarStore(settings.media_dir),
            callers=CallerSource(
                settings.gateway.verifier(),
                settings.user_header,
                settings.role_header if settings.trust_role_header else None,
            ),
        )
