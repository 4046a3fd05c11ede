"""The identity header: who the gateway vouches for.

After authentication the upstream receives ``User: <sub>`` (the first seed's contract; the
name is configurable). Services trust this header blindly because only the gateway can reach
them, so a client must never be able to set it: any incoming header of that name, in any
letter case, is removed on every route, public or not, before anything else happens.

A route may send another claim as the identity (``RouteSpec.identity_claim``, from a claim
mapping onto the identity header's own name); ``claimed_identity`` reads it, and its text
goes through ``IdentityHeader.line`` like a ``sub`` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from propylon.config.model import ClaimHeader
from propylon.policies.claim_headers import claim_text
from propylon.policies.forwarding import HOP_BY_HOP

# Characters that could end a header line or smuggle a second header into the upstream request.
_UNSAFE_VALUE = re.compile(rb"[\x00-\x1f\x7f]")
_REMEMBERED = 4096
_LONGEST_REMEMBERED = 256
"""Subjects longer than this (characters) get their line built every time: the memo holds at
most _REMEMBERED * ~_LONGEST_REMEMBERED bytes, whatever subjects tokens carry."""
_UNKNOWN = b""


class IdentityHeader:
    __slots__ = ("_lines", "lower", "name")

    def __init__(self, name: str) -> None:
        lower = name.lower().encode("ascii")
        if lower in HOP_BY_HOP:
            raise ValueError(f"identity header {name!r} is a hop-by-hop header")
        self.name = name.encode("ascii")
        self.lower = lower
        # The same callers come back again and again: remember their lines (bounded).
        self._lines: dict[str, bytes | None] = {}

    def line(self, subject: str) -> bytes | None:
        """The header line for ``subject``, or None when the subject cannot be sent safely."""
        lines = self._lines
        # get() with a default, not try/except KeyError: a new subject is the common case
        # when tokens rotate, and a raised KeyError costs more than this whole method.
        found = lines.get(subject, _UNKNOWN)
        if found != _UNKNOWN:  # no real line is empty
            return found
        value = subject.encode("utf-8")
        line = None if _UNSAFE_VALUE.search(value) else self.name + b": " + value
        if len(subject) <= _LONGEST_REMEMBERED:
            if len(lines) >= _REMEMBERED:
                lines.clear()
            lines[subject] = line
        return line


def claimed_identity(claims: Mapping[str, Any], spec: ClaimHeader) -> str | None:
    """The identity a route with ``identity_claim`` ``spec`` sends instead of the ``sub``.

    None when the token lacks that claim (or it is empty): such a token names nobody on this
    route, so the request is refused, never forwarded with the ``sub`` or without an
    identity."""
    text = claim_text(claims, spec)
    return text if text else None
