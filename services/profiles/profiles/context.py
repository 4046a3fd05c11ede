"""Everything a request handler needs, built once per application from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.database import Database

from profiles.avatars import AvatarStore
from profiles.settings import ProfilesSettings


@dataclass(frozen=True, slots=True)
class ProfilesContext:
    settings: ProfilesSettings
    database: Database
    avatars: AvatarStore

    @classmethod
    def build(cls, settings: ProfilesSettings) -> ProfilesContext:
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            avatars=AvatarStore(settings.media_dir),
        )
