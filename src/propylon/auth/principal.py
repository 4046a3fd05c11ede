"""The verified caller, as the rest of the gateway sees it."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from propylon.auth.failures import AuthFailure

SCOPE_CLAIMS = ("scope", "scp")


class Principal:
    """Immutable (``Final``, enforced by the strict type check): a cached principal is shared
    by every request that carries its token. A plain class rather than a frozen dataclass,
    whose generated ``__init__`` stays interpreted and sets each field through
    ``object.__setattr__``: one is built per token-cache miss."""

    __slots__ = ("claims", "expires_at", "provider", "scopes", "subject")

    def __init__(
        self,
        subject: str,
        claims: Mapping[str, Any],
        scopes: frozenset[str],
        expires_at: float,
        provider: str,
    ) -> None:
        self.subject: Final = subject
        """The ``sub`` claim."""
        self.claims: Final = claims
        self.scopes: Final = scopes
        """From ``scope`` (OAuth 2: a space-separated string; some issuers send an array)
        and ``scp`` (Azure AD and Okta)."""
        self.expires_at: Final = expires_at
        """``exp``, whole epoch seconds."""
        self.provider: Final = provider
        """Name of the provider that verified the token."""

    def _fields(self) -> tuple[str, Mapping[str, Any], frozenset[str], float, str]:
        return (self.subject, self.claims, self.scopes, self.expires_at, self.provider)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Principal):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # claims is a mapping: not hashable

    def __repr__(self) -> str:
        return (
            f"Principal(subject={self.subject!r}, scopes={sorted(self.scopes)!r}, "
            f"expires_at={self.expires_at!r}, provider={self.provider!r})"
        )


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    for name in SCOPE_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str) and item)
    return frozenset(found)


def principal_from_claims(claims: dict[str, Any], provider: str, expires_at: float) -> Principal:
    """Build the principal of a token whose signature and registered claims already verified.

    ``expires_at`` is ``exp`` exactly as the verifier compared it with the clock (whole
    seconds, a float): a cached token must stop being served exactly when a fresh
    verification would refuse it."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        # The identity header is how upstreams learn who called; without a subject there is
        # no one to name, so the token is useless for a protected route.
        raise AuthFailure("token has no string sub")
    return Principal(
        subject=subject,
        # A read-only view: cached principals are shared by every request with the token.
        claims=MappingProxyType(claims),
        scopes=scopes_of(claims),
        expires_at=expires_at,
        provider=provider,
    )
