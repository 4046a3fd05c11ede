"""Who is asking, and may they see everyone's profiles."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from servicekit.caller import caller_name

from profiles.settings import ProfilesSettings


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    is_admin: bool

    def may_access(self, owner: str) -> bool:
        return self.is_admin or owner == self.name


def caller_from(request: Request, settings: ProfilesSettings) -> Caller:
    name = caller_name(request.headers.get(settings.user_header))
    is_admin = settings.trust_role_header and (
        request.headers.get(settings.role_header, "").strip().lower() == "admin"
    )
    return Caller(name=name, is_admin=is_admin)
