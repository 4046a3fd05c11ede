"""propylon's token checks against PyJWT's, on generated tokens.

The gateway parses tokens and checks claims itself (compact_jws.py, verifier.py) and leaves
only the signature to PyJWT's algorithm objects; PyJWT's ``jwt.decode`` is the reference.
Whatever the gateway accepts, PyJWT must accept with the same claims; whatever PyJWT accepts
and the gateway refuses must be one of the documented places where the gateway is stricter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propylon.auth import Authenticator, AuthFailure
from propylon.config.model import JwtProviderSpec

SECRET = b"parity-test-secret-of-thirty-two-bytes-or-more"
WRONG_SECRET = b"another-secret-of-thirty-two-bytes-or-more!!!!"
ISSUER = "https://id.test"
AUDIENCE = "api"
NOW = int(time.time())

ABSENT = object()
"""A claim or header member left out of the token."""


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> bytes:
    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return signing_input + b"." + b64(mac)


def times(offset: int) -> list[Any]:
    return [NOW + offset, NOW - offset, float(NOW + offset) + 0.5, str(NOW + offset), True, None]


# Every claim's possible values; the first is the one a good token has (ABSENT: left out).
CLAIM_VALUES: dict[str, list[Any]] = {
    "exp": [NOW + 600, *times(600), [NOW + 600], ABSENT],
    "nbf": [ABSENT, *times(600)],
    "iat": [NOW, *times(600), ABSENT],
    "iss": [ISSUER, "https://evil.test", 5, None, ABSENT],
    "aud": [[AUDIENCE], AUDIENCE, "other", ["web", AUDIENCE], ["web"], [], "", 5, ABSENT],
    "sub": ["alice", "", 42, None, ABSENT],
    "jti": [ABSENT, "j-1", 7],
    "scope": [ABSENT, "read write", ["read"]],
}


@st.composite
def claim_sets(draw: st.DrawFn, configured: bool) -> dict[str, Any]:
    """A good claim set with up to three claims changed: single faults are each likely to
    be drawn, which uniformly random claim sets (mostly several faults at once) are not."""
    claims = {name: values[0] for name, values in CLAIM_VALUES.items()}
    if not configured:
        claims["aud"] = ABSENT  # a provider without an audience refuses tokens naming one
    for name in draw(st.lists(st.sampled_from(sorted(CLAIM_VALUES)), max_size=3, unique=True)):
        claims[name] = draw(st.sampled_from(CLAIM_VALUES[name]))
    return {k: v for k, v in claims.items() if v is not ABSENT}


HEADER_EXTRAS = st.sampled_from(
    [
        {},
        {"typ": "JWT"},
        {"kid": "k1"},
        {"kid": 1},
        {"crit": ["b64"], "b64": True},
        {"crit": ["exp-ext"], "exp-ext": 1},
        {"crit": []},
        {"b64": True},
    ]
)


def pyjwt_claims(token: bytes, configured: bool) -> dict[str, Any] | None:
    try:
        decoded: dict[str, Any] = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            options={"require": ["exp", "iss", "aud"] if configured else ["exp"]},
            issuer=ISSUER if configured else None,
            audience=AUDIENCE if configured else None,
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return decoded


def stricter_here(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """Tokens PyJWT takes and the gateway, by design, does not (see the modules' docs)."""
    numbers_required = any(
        name in claims
        and (
            isinstance(claims[name], bool)
            or not isinstance(claims[name], int | float)
            or not math.isfinite(claims[name])
        )
        for name in ("exp", "nbf", "iat")
    )
    no_subject = not isinstance(claims.get("sub"), str) or not claims["sub"]
    extensions = "crit" in header or ("b64" in header and header["b64"] is not True)
    return numbers_required or no_subject or extensions


@pytest.mark.parametrize("configured", [False, True], ids=["plain", "issuer+audience"])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), extras=HEADER_EXTRAS, right_key=st.booleans())
def test_the_gateway_accepts_only_what_pyjwt_accepts(
    configured: bool, data: st.DataObject, extras: dict[str, Any], right_key: bool
) -> None:
    claims = data.draw(claim_sets(configured))
    header = {"alg": "HS256", **extras}
    token = forge(header, claims, SECRET if right_key else WRONG_SECRET)
    spec = JwtProviderSpec(
        "p",
        ("HS256",),
        secret=SECRET,
        issuer=ISSUER if configured else None,
        audience=(AUDIENCE,) if configured else (),
    )
    reference = pyjwt_claims(token, configured)
    try:
        principal = Authenticator({"p": spec}).authenticate([b"Bearer " + token], ("p",))
    except AuthFailure:
        assert reference is None or stricter_here(header, claims), (header, claims)
    else:
        assert reference is not None, (header, claims)
        assert dict(principal.claims) == reference


def test_the_generated_tokens_exercise_both_outcomes() -> None:
    """Guards the property above against strategies that only ever produce refusals."""
    good = {"sub": "alice", "exp": NOW + 600, "iss": ISSUER, "aud": [AUDIENCE]}
    spec = JwtProviderSpec("p", ("HS256",), secret=SECRET, issuer=ISSUER, audience=(AUDIENCE,))
    token = forge({"alg": "HS256"}, good, SECRET)
    assert pyjwt_claims(token, True) == good
    assert Authenticator({"p": spec}).authenticate([b"Bearer " + token], ("p",)).subject == "alice"
