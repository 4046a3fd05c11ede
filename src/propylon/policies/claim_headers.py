"""Headers written from a verified token's claims (Ocelot ``AddHeadersToRequest``).

Services read these headers as facts vouched for by the gateway (the profiles service decides
who is an admin from one), so they get the identity header's treatment: the names are removed
from every client request on every route (``stripped_names``), and set only from claims.
Claims are found by the lookup authorization uses (``auth.claims``): a claim that grants
access on a route is the claim its headers carry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from propylon.auth.claims import claim_value
from propylon.config.model import ClaimHeader, RouteSpec

_UNSAFE_VALUE = re.compile(r"[\x00-\x1f\x7f]")


def stripped_names(routes: Sequence[RouteSpec]) -> frozenset[bytes]:
    return frozenset(
        h.header.lower().encode("ascii") for route in routes for h in route.claim_headers
    )


class ClaimHeaders:
    """The claim headers of one route, ready to render per request."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Sequence[ClaimHeader]) -> None:
        self._headers = tuple((h.header.encode("ascii"), h) for h in headers)

    def __bool__(self) -> bool:
        return bool(self._headers)

    def lines(self, claims: Mapping[str, Any]) -> list[bytes]:
        out = []
        for name, spec in self._headers:
            value = _value(claim_value(claims, spec.claim), spec)
            if value is not None and not _UNSAFE_VALUE.search(value):
                out.append(name + b": " + value.encode("utf-8"))
        return out


def claim_text(claims: Mapping[str, Any], spec: ClaimHeader) -> str | None:
    """The text ``spec`` takes from ``claims`` (as a claim header would carry it), or None
    when the token has no such claim (or no such element)."""
    return _value(claim_value(claims, spec.claim), spec)


def _value(raw: Any, spec: ClaimHeader) -> str | None:
    if raw is None or isinstance(raw, dict):
        return None
    if isinstance(raw, list):
        text = ", ".join(str(v) for v in raw if not isinstance(v, (list, dict)))
    elif isinstance(raw, bool):
        text = "true" if raw else "false"
    else:
        text = str(raw)
    if spec.index is None:
        return text
    parts = text.split(spec.delimiter) if spec.delimiter else [text]
    return parts[spec.index] if spec.index < len(parts) else None
