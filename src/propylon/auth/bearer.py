"""Finding the bearer token among a request's ``Authorization`` header values (RFC 6750).

Works on the raw bytes the parser handed over so that the cached path never decodes text.
"""

from __future__ import annotations

from collections.abc import Sequence

from propylon.auth.failures import AuthFailure

SCHEME = b"bearer "


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
