"""Authorization: does a verified principal satisfy a route's ``AuthRequirement``? Pure.

How this relates to Ocelot, whose ``AllowedScopes`` and ``RouteClaimsRequirement`` routes we
load unchanged:

- Scopes are any-of, as Ocelot's ScopesAuthorizer has long been (an intersection; its docs
  were corrected to "at least one of" in Ocelot PR #1520; an all-of variant was proposed in
  PR #1478). ``scope`` may be a space-separated string or an array; ``scp`` is read too.
- Ocelot compares claim types and values exactly (ordinal), on the claims ASP.NET produced
  from the token. ASP.NET renames some JWT claims on the way in (``role`` becomes
  ``http://schemas.microsoft.com/ws/2008/06/identity/claims/role``) and turns an array claim
  into one claim per element. So Ocelot files name either the URI, or a spelling such as
  ``Role`` for a token's ``role`` claim (people write it that way, and the second seed does).
  Names are looked up by ``auth.claims.claim_value`` (exactly, then case-insensitively, then
  through the ASP.NET claim type URIs), the same lookup claim headers use; an array claim
  holds when an element equals the value. Values compare as strings, exactly (JSON ``true``
  is ``"true"``, ``5`` is ``"5"``).
"""

from __future__ import annotations

from typing import Any

from propylon.auth.claims import claim_value
from propylon.auth.principal import Principal
from propylon.config.model import AuthRequirement


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None  # objects and null never equal a configured string


def claim_holds(value: Any, expected: str) -> bool:
    if isinstance(value, list):
        return any(_as_text(item) == expected for item in value)
    return _as_text(value) == expected


def authorize(principal: Principal, requirement: AuthRequirement) -> bool:
    """True when ``principal`` may use a route with ``requirement`` (False -> 403)."""
    if requirement.allowed_scopes and principal.scopes.isdisjoint(requirement.allowed_scopes):
        return False
    if not requirement.required_claims:
        return True  # the common case, without building a generator per request
    claims = principal.claims
    return all(
        claim_holds(claim_value(claims, name), expected)
        for name, expected in requirement.required_claims
    )
