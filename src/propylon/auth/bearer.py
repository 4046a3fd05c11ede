"""Finding the bearer token among a request's ``Authorization`` header values (RFC 6750).

Works on the raw bytes the parser handed over so that the cached path never decodes text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

import orjson

from propylon.auth.failures import AuthFailure

SCHEME = b"bearer "
MAX_TOKEN_BYTES = 32 * 1024
"""Large enough for tokens carrying many group claims, small enough to bound what the
verified-token cache can be made to hold."""

# JWS compact serialisation: three base64url segments. Trailing '=' is tolerated because some
# issuers (AWS ALB) pad; anything else (spaces, commas, a second credential) is not a token.
_COMPACT_JWS = re.compile(rb"[A-Za-z0-9_-]+=*\.[A-Za-z0-9_-]+=*\.[A-Za-z0-9_-]+=*")


def bearer_token(authorization: Sequence[bytes]) -> bytes:
    """The token of the request's only ``Authorization: Bearer <token>`` header.

    The scheme is case-insensitive (RFC 9110 s.11.1); one or more spaces may follow it. No
    header, two headers or another scheme is a failure: with two headers, which one an
    upstream or a log would believe is anyone's guess.
    """
    if len(authorization) != 1:
        raise AuthFailure(
            "no Authorization header" if not authorization else "duplicate Authorization"
        )
    value = authorization[0]
    if value[:7].lower() != SCHEME:
        raise AuthFailure("not a Bearer credential")
    token = value[7:].strip(b" ")
    if not token:
        raise AuthFailure("empty bearer token")
    return token


def is_compact_jws(token: bytes) -> bool:
    """Whether ``token`` is shaped like a signed JWT; checked only before a full verification,
    since a cached token was checked when it was first verified."""
    return len(token) <= MAX_TOKEN_BYTES and _COMPACT_JWS.fullmatch(token) is not None


def unverified_header(token: bytes) -> dict[str, Any]:
    """The JOSE header of a compact JWS, not yet trusted: it only chooses the provider's key
    and algorithm, and PyJWT checks it again while verifying. Parsed here once per token,
    not once per provider tried."""
    segment = token[: token.find(b".")]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise AuthFailure("malformed token") from None
    if not isinstance(header, dict):
        raise AuthFailure("malformed token")
    return header
