"""The signed hop: what the gateway asserts about the caller, signed with its own key.

Services behind the gateway used to believe a bare ``User`` header, so anything that could
reach their port could act as anyone. With assertions on, each authenticated request also
carries ``X-Gateway-Assertion``: a short-lived JWT the gateway signs with an Ed25519 key,
which ``servicekit`` verifies against the gateway's published public keys (a JWK set file,
or the JWKS the operations listener serves) and believes instead of bare headers.

The contract (services/README.md, "The signed hop"): JOSE header ``alg: EdDSA``,
``typ: gateway-assertion+jwt``, ``kid`` = the RFC 7638 thumbprint of the key; claims ``iss``,
``aud`` (the service's name), ``sub``, ``iat``, ``exp`` (iat + lifetime seconds), and
``role`` / ``scope`` (strings) when the caller's token had them.

Signing costs about 50 us, so a signed assertion is reused for the same caller, audience and
claims until half its lifetime is gone (bounded like every per-caller memo).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from propylon.config.model import AssertionSettings

ASSERTION_HEADER = b"X-Gateway-Assertion"
ASSERTION_HEADER_LOWER = ASSERTION_HEADER.lower()
"""Stripped from every client request, on every route, whether assertions are on or not: a
service that verifies must never see one the gateway did not sign."""
ASSERTION_TYPE = "gateway-assertion+jwt"
DEFAULT_ISSUER = "propylon"
DEFAULT_LIFETIME = 60.0
_REMEMBERED = 4096
_LONGEST_REMEMBERED_SUBJECT = 256


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def public_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw).decode("ascii")}


def thumbprint(key: Ed25519PrivateKey) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, no whitespace."""
    jwk = public_jwk(key)
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode("ascii")
    return _b64url(hashlib.sha256(canonical).digest()).decode("ascii")


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The private key in ``path`` (PEM, PKCS#8), generated there (mode 0600) when absent.

    ValueError naming the file when it holds something else."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise ValueError(f"{path}: not a PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: the assertion key must be Ed25519")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


class AssertionSigner:
    __slots__ = ("_clock", "_header", "_key", "_memo", "issuer", "kid", "lifetime")

    def __init__(
        self,
        key: Ed25519PrivateKey,
        *,
        issuer: str = DEFAULT_ISSUER,
        lifetime: float = DEFAULT_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.issuer = issuer
        self.lifetime = lifetime
        self.kid = thumbprint(key)
        self._header = _b64url(
            orjson.dumps({"alg": "EdDSA", "kid": self.kid, "typ": ASSERTION_TYPE})
        )
        self._clock = clock
        self._memo: dict[tuple[str, str, str | None, str | None], tuple[bytes, float]] = {}

    def jwks(self) -> dict[str, Any]:
        """The public key set services verify with (also written to a file for them)."""
        return {"keys": [{**public_jwk(self._key), "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def write_public_keys(self, path: Path) -> None:
        """Write ``jwks()`` to ``path`` atomically (services re-read it when it changes)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name per process: two gateways publishing to one shared file must not race.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(orjson.dumps(self.jwks()))
        temporary.replace(path)

    def line(self, subject: str, audience: str, claims: Mapping[str, Any]) -> bytes:
        """The ``X-Gateway-Assertion`` header line for this caller and audience."""
        role = _text(claims.get("role"))
        scope = _text(claims.get("scope"))
        key = (subject, audience, role, scope)
        now = self._clock()
        found = self._memo.get(key)
        if found is not None and now < found[1]:
            return found[0]
        token = self._sign(subject, audience, role, scope, now)
        line = ASSERTION_HEADER + b": " + token
        if len(subject) <= _LONGEST_REMEMBERED_SUBJECT:
            if len(self._memo) >= _REMEMBERED:
                self._memo.clear()
            self._memo[key] = (line, now + self.lifetime / 2)
        return line

    def _sign(
        self, subject: str, audience: str, role: str | None, scope: str | None, now: float
    ) -> bytes:
        issued = int(now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": issued,
            "exp": issued + int(self.lifetime),
        }
        if role is not None:
            claims["role"] = role
        if scope is not None:
            claims["scope"] = scope
        signing_input = self._header + b"." + _b64url(orjson.dumps(claims))
        return signing_input + b"." + _b64url(self._key.sign(signing_input))


def signer_for(settings: AssertionSettings) -> AssertionSigner:
    """The signer a loaded config describes (its key was checked when it was loaded)."""
    key = serialization.load_pem_private_key(settings.key_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{settings.key_file}: the assertion key must be Ed25519")
    return AssertionSigner(key, issuer=settings.issuer, lifetime=settings.lifetime)


def _text(value: object) -> str | None:
    """A claim as the contract sends it: a string, a list joined by spaces, or nothing."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return None
