"""Who is asking, and may they see everyone's profiles."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from servicekit.caller import CallerSource

ROLE_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    is_admin: bool

    def may_access(self, owner: str) -> bool:
        return self.is_admin or owner == self.name


def caller_from(request: Request, callers: CallerSource) -> Caller:
    # The role is believed from a verified gateway assertion or, without verification, from
    # the role header only when PROFILES_TRUST_ROLE_HEADER says so (CallerSource's role_header).
    caller = callers.caller(request)
    return Caller(name=caller.name, is_admin=caller.role == ROLE_ADMIN)
