"""What a profile looks like in a response."""

from __future__ import annotations

from typing import Any

from servicekit.database import as_utc

from profiles.models import Profile


def profile_view(profile: Profile) -> dict[str, Any]:
    avatar = None
    if profile.avatar_file:
        avatar = {
            "content_type": profile.avatar_type,
            "size": profile.avatar_size,
            "sha256": profile.avatar_sha256,
        }
    return {
        "id": profile.id,
        "owner": profile.owner,
        "display_name": profile.display_name,
        "bio": profile.bio,
        "location": profile.location,
        "avatar": avatar,
        "created_at": as_utc(profile.created_at),
        "updated_at": as_utc(profile.updated_at),
    }
