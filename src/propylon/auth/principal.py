"""The verified caller, as the rest of the gateway sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from propylon.auth.failures import AuthFailure

SCOPE_CLAIMS = ("scope", "scp")


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    """The ``sub`` claim."""
    claims: Mapping[str, Any]
    scopes: frozenset[str]
    """From ``scope`` (OAuth 2: a space-separated string; some issuers send an array) and
    ``scp`` (Azure AD and Okta)."""
    expires_at: float
    """``exp``, whole epoch seconds."""
    provider: str
    """Name of the provider that verified the token."""


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    for name in SCOPE_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str) and item)
    return frozenset(found)


def principal_from_claims(claims: dict[str, Any], provider: str) -> Principal:
    """Build the principal of a token whose signature and registered claims already verified."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        # The identity header is how upstreams learn who called; without a subject there is
        # no one to name, so the token is useless for a protected route.
        raise AuthFailure("token has no string sub")
    # Whole seconds, as the verifier compared them: a cached token must stop being served
    # exactly when a fresh verification would refuse it.
    exp = int(claims["exp"])
    return Principal(
        subject=subject,
        # A read-only view: cached principals are shared by every request with the token.
        claims=MappingProxyType(claims),
        scopes=scopes_of(claims),
        expires_at=float(exp),
        provider=provider,
    )
