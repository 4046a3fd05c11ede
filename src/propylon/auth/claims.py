"""Finding a claim by the name a config gives it: the one lookup authorization and
claim-to-header mapping share, so a claim that grants access is also the one forwarded.

Ocelot compares claim types exactly (ordinal), on the claims ASP.NET produced from the token.
ASP.NET renames some JWT claims on the way in (``role`` becomes
``http://schemas.microsoft.com/ws/2008/06/identity/claims/role``), so Ocelot files name
either that URI or a spelling such as ``Role`` for a token's ``role`` claim (people write it
that way, and the second seed does). A name is matched exactly first, then
case-insensitively, then through the ASP.NET claim type URIs below.

On the request path (claim headers run per request on authenticated routes): the exact match
is a single dict lookup; only a miss walks the token's claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MS_CLAIMS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"
_SOAP_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"

ASPNET_CLAIM_TYPES: Mapping[str, str] = {
    _MS_CLAIMS + "role": "role",
    _SOAP_CLAIMS + "nameidentifier": "sub",
    _SOAP_CLAIMS + "name": "unique_name",
    _SOAP_CLAIMS + "emailaddress": "email",
    _SOAP_CLAIMS + "givenname": "given_name",
    _SOAP_CLAIMS + "surname": "family_name",
}
"""ASP.NET's inbound claim type URIs and the JWT claim each comes from (the common ones)."""


def claim_value(claims: Mapping[str, Any], name: str) -> Any:
    """The value of claim ``name``: exact name, else case-insensitive, else an ASP.NET claim
    type URI's JWT name. None when absent."""
    if name in claims:
        return claims[name]
    folded = name.casefold()
    for key, value in claims.items():
        if key.casefold() == folded:
            return value
    alias = ASPNET_CLAIM_TYPES.get(folded)
    return claim_value(claims, alias) if alias is not None else None
