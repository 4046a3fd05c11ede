"""Headers set from token claims: Ocelot's ``AddHeadersToRequest`` and the native
``claim_headers``.

Ocelot writes ``"X-User-Role": "Claims[role] > value"``, or with an index into a delimited
claim ``"Claims[sub] > value[1] > |"``. A service trusts such a header the way it trusts the
identity header, so the same rules apply to its name: a valid token, and never a hop-by-hop,
framing or gateway-owned header.
"""

from __future__ import annotations

import re

from propylon.config import values
from propylon.config.model import ClaimHeader

_OCELOT = re.compile(
    r"\s*Claims\[(?P<claim>[^\]]+)\]\s*>\s*value"
    r"(?:\s*\[(?P<index>\d+)\]\s*>\s*(?P<delimiter>\S+))?\s*",
    re.IGNORECASE,
)


def header(name: str) -> str:
    """A header name a claim may be written into, or ValueError."""
    try:
        return values.identity_header(name)
    except ValueError as exc:
        raise ValueError(str(exc).replace("the caller's identity", "a claim")) from None


def from_ocelot(name: str, expression: str) -> ClaimHeader:
    match = _OCELOT.fullmatch(expression)
    if match is None:
        raise ValueError(
            f"{expression!r} is not a claims expression; Ocelot's forms are "
            "'Claims[name] > value' and 'Claims[name] > value[index] > delimiter'"
        )
    index = match.group("index")
    return ClaimHeader(
        header=header(name),
        claim=match.group("claim").strip(),
        index=int(index) if index is not None else None,
        delimiter=match.group("delimiter"),
    )


def from_native(name: str, claim: str) -> ClaimHeader:
    if not claim.strip():
        raise ValueError("the claim name is empty")
    return ClaimHeader(header=header(name), claim=claim.strip())
