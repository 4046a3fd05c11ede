"""Headers set from token claims: Ocelot's ``AddHeadersToRequest`` and the native
``claim_headers``.

Ocelot writes ``"X-User-Role": "Claims[role] > value"``, or with an index into a delimited
claim ``"Claims[sub] > value[1] > |"``. A service trusts such a header the way it trusts the
identity header, so the same rules apply to its name: a valid token, and never a hop-by-hop,
framing or gateway-owned header.

A mapping onto the identity header's own name (``"User": "Claims[sub] > value"``, the usual
Ocelot idiom; any letter case) is not one more header: it says which claim the route sends
*as* the identity (``RouteSpec.identity_claim``), so the upstream still gets exactly one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from propylon.config import values
from propylon.config.diagnostics import Diagnostics, Loc
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


def assign(
    found: Sequence[tuple[Loc, ClaimHeader]], identity_header: str, diag: Diagnostics
) -> tuple[ClaimHeader | None, tuple[ClaimHeader, ...]]:
    """Split a route's mappings (each with its key path) into the claim it sends as the
    identity (None: the ``sub``) and its other claim headers. Two mappings onto one header
    name (names are case-insensitive) are an error: the upstream would get two lines."""
    seen: dict[str, Loc] = {}
    identity: ClaimHeader | None = None
    others: list[ClaimHeader] = []
    for loc, spec in found:
        lower = spec.header.lower()
        if lower in seen:
            diag.error(
                loc,
                f"{spec.header!r} is already set from a claim by {diag.path(seen[lower])} "
                "(header names are case-insensitive): the upstream would get it twice",
            )
            continue
        seen[lower] = loc
        if lower != identity_header.lower():
            others.append(spec)
        elif spec.claim != "sub" or spec.index is not None:
            identity = ClaimHeader(identity_header, spec.claim, spec.index, spec.delimiter)
        # else: the sub, which the identity header carries anyway
    return identity, tuple(others)


def describe(spec: ClaimHeader) -> str:
    """A mapping's claim as ``check`` and ``routes`` show it."""
    if spec.index is None:
        return f"claim {spec.claim!r}"
    return f"claim {spec.claim!r} (element {spec.index} split on {spec.delimiter!r})"
