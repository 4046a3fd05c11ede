"""The compact JWS serialisation (RFC 7515 s.7.1), parsed strictly, once per token.

PyJWT's ``decode`` parses tokens too, but checks the base64url alphabet one character at a
time in Python; with key preparation and claim checks that made one HS256 verification cost
~97 us, the whole price of a token-cache miss. Here the same rules run on C primitives
(``bytes.translate``, binascii, orjson) and the signature is checked by PyJWT's algorithm
objects or, for HMAC, the standard library's (see ``verifier.py``). The rules follow
PyJWT 2.x and are stricter where noted; ``tests/unit/test_auth_pyjwt_parity.py`` checks on
generated tokens that nothing PyJWT refuses is accepted here.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from propylon.auth.failures import AuthFailure

MAX_TOKEN_BYTES = 32 * 1024
"""Large enough for tokens carrying many group claims, small enough to bound what the
verified-token cache can be made to hold."""

# base64url without padding; up to two '=' are tolerated because some issuers (AWS ALB) pad.
_BASE64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


_TO_STANDARD_ALPHABET = bytes.maketrans(b"-_", b"+/")
# A final quantum of 2 or 3 characters leaves 4 or 2 low bits of the last character unused;
# in the canonical encoding they are zero, which only these characters have.
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}


def decode_segment(segment: bytes) -> bytes:
    """The bytes of one base64url segment, or AuthFailure.

    Canonical encodings only, as PyJWT requires: padding only where it completes a quantum,
    and the unused low bits of the last character zero, so a signed segment has exactly one
    spelling. (The header value around the token still has several, such as the scheme's
    letter case and spacing; each is its own entry in the bounded token cache.)
    """
    # What the regex [A-Za-z0-9_-]+={0,2} says, with two C loops instead of the regex engine.
    data = segment.rstrip(b"=")
    padding = len(segment) - len(data)
    if not data or padding > 2 or data.translate(None, _BASE64URL):
        raise AuthFailure("malformed token")
    tail = len(data) % 4
    if (padding and len(segment) % 4) or tail == 1:
        raise AuthFailure("malformed token")
    if tail and data[-1] not in _CANONICAL_LAST[tail]:
        raise AuthFailure("malformed token")
    try:
        return binascii.a2b_base64(
            data.translate(_TO_STANDARD_ALPHABET) + b"=" * (-tail % 4), strict_mode=True
        )
    except binascii.Error:
        raise AuthFailure("malformed token") from None


# orjson reads integers beyond 64 bits as floats; a run of 19 digits sends the document to
# the exact (slower) standard parser, so two different signed numbers never read the same.
# Found by mapping digits to "0" and everything else to " " (one C loop, then a substring
# search), which is the regex [0-9]{19} without the regex engine.
_DIGIT_RUNS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_RUN = b"0" * 19


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(data: bytes) -> dict[str, Any]:
    # Strict JSON either way: UTF-8 only, no NaN or Infinity (PyJWT's json.loads takes both,
    # and UTF-16/32); anything else is not a token we want to reason about.
    try:
        if _LONG_RUN not in data.translate(_DIGIT_RUNS):
            value = orjson.loads(data)
        else:
            value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
        raise AuthFailure("malformed token") from None
    if not isinstance(value, dict):
        raise AuthFailure("malformed token")
    return value


class CompactJws:
    """A token split and its header parsed; the signature not yet checked. (A plain class:
    it lives for one verification, and a dataclass's generated ``__init__`` stays
    interpreted even where this module is compiled.)"""

    __slots__ = ("header", "payload_segment", "signature", "signing_input")

    def __init__(
        self,
        header: Mapping[str, Any],
        signing_input: bytes,
        payload_segment: bytes,
        signature: bytes,
    ) -> None:
        self.header = header
        """The JOSE header, shared between tokens with the same header segment, so
        read-only. Untrusted until the signature verifies: it only selects which of the
        provider's keys and algorithms to try."""
        self.signing_input = signing_input
        """``header.payload`` as sent: what the signature covers."""
        self.payload_segment = payload_segment
        self.signature = signature

    def claims(self) -> dict[str, Any]:
        """The payload as a JSON object. Decoded only after the signature verified, so junk
        in an unsigned payload costs nothing."""
        return _json_object(decode_segment(self.payload_segment))


HEADER_CACHE_SIZE = 256
HEADER_CACHE_MAX_SEGMENT = 512
_HEADERS: dict[bytes, Mapping[str, Any]] = {}
"""Parsed header segments. An issuer signs every token with one of a few headers (``alg``,
``typ``, ``kid``), so on a token-cache miss the header is almost always one seen before.
The parse is a pure function of the segment's bytes, so a hit is exactly what parsing would
give; only accepted headers are kept, and the size is bounded (cleared when full; segments
longer than HEADER_CACHE_MAX_SEGMENT, which no issuer's header needs, are parsed each time)."""


def _parse_header(segment: bytes) -> Mapping[str, Any]:
    header = _json_object(decode_segment(segment))
    if "kid" in header and not isinstance(header["kid"], str):
        raise AuthFailure("kid is not a string")
    if "crit" in header or header.get("b64", True) is not True:
        raise AuthFailure("unsupported critical header")
    return MappingProxyType(header)


def parse_compact_jws(token: bytes) -> CompactJws:
    """Split and check ``token``; AuthFailure when it is not a signed compact JWS we accept.

    Refused here: anything but three non-empty segments (so ``alg: none`` tokens, whose
    signature is empty, and five-segment JWE tokens), a header that is not a JSON object, a
    non-string ``kid``, any ``crit`` (we implement no JWS extension, and RFC 7515 s.4.1.11
    requires refusing critical ones we do not understand; PyJWT knows ``b64`` but a bearer
    token never has a detached payload) and ``b64: false``.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthFailure("malformed token")
    segments = token.split(b".")
    if len(segments) != 3:
        raise AuthFailure("malformed token")
    header_segment, payload_segment, signature_segment = segments
    header = _HEADERS.get(header_segment)
    if header is None:
        header = _parse_header(header_segment)
        if len(header_segment) <= HEADER_CACHE_MAX_SEGMENT:
            if len(_HEADERS) >= HEADER_CACHE_SIZE:
                _HEADERS.clear()
            _HEADERS[header_segment] = header
    if not payload_segment:
        raise AuthFailure("malformed token")
    return CompactJws(
        header=header,
        signing_input=token[: len(header_segment) + 1 + len(payload_segment)],
        payload_segment=payload_segment,
        signature=decode_segment(signature_segment),
    )
