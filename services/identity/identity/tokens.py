"""Access tokens: short-lived JWTs signed by the key directory's newest key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

from identity.keys import ALGORITHM, KeyDirectory
from identity.models import ROLE_ADMIN

USER_SCOPES = ("profiles:read", "profiles:write")
ADMIN_SCOPES = (*USER_SCOPES, "users:admin")


def scopes_for(role: str) -> str:
    return " ".join(ADMIN_SCOPES if role == ROLE_ADMIN else USER_SCOPES)


@dataclass(frozen=True, slots=True)
class AccessTokenIssuer:
    keys: KeyDirectory
    issuer: str
    audience: str | None
    ttl_seconds: int

    def issue(self, username: str, role: str, now: datetime) -> str:
        issued = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": username,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "role": role,
            "scope": scopes_for(role),
        }
        if self.audience:
            claims["aud"] = self.audience
        signer = self.keys.ring().signer
        return jwt.encode(
            claims, signer.private_key, algorithm=ALGORITHM, headers={"kid": signer.kid}
        )
