"""Turning a JWKS document (RFC 7517) into verification keys. Pure: no I/O.

Only what a JWKS can safely give is taken: public signing keys (RSA, EC, OKP). Symmetric
(``oct``) members, encryption keys and keys whose ``alg`` the provider does not allow are
skipped, so publishing a key can never widen what the provider accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

from propylon.auth.keys import VerificationKey, check_public_key, public_key_algorithms

MAX_KEYS = 64
"""Real key sets hold a handful of keys; a kid-less token is tried against each candidate, so
the set size bounds the work one token can cause."""

PRIVATE_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)

_LOADERS = {"RSA": RSAAlgorithm.from_jwk, "EC": ECAlgorithm.from_jwk, "OKP": OKPAlgorithm.from_jwk}


def _empty_by_kid() -> Mapping[str, tuple[VerificationKey, ...]]:
    return {}


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: tuple[VerificationKey, ...] = ()
    by_kid: Mapping[str, tuple[VerificationKey, ...]] = field(default_factory=_empty_by_kid)

    def candidates(self, kid: str | None, alg: str) -> tuple[VerificationKey, ...]:
        """Keys that may verify a token with this header ``kid`` and ``alg``."""
        pool = self.keys if kid is None else self.by_kid.get(kid, ())
        return tuple(k for k in pool if alg in k.algorithms)

    def knows(self, kid: str) -> bool:
        return kid in self.by_kid


@dataclass(frozen=True, slots=True)
class ParsedKeySet:
    keys: KeySet
    skipped: tuple[str, ...]
    """One line per member left out, for the operator's log (no key material)."""


def key_from_jwk(jwk: Mapping[str, Any], allowed: frozenset[str]) -> VerificationKey:
    """The verification key of one JWKS member, or ValueError saying why it is unusable."""
    kty = jwk.get("kty")
    loader = _LOADERS.get(kty) if isinstance(kty, str) else None
    if loader is None:
        raise ValueError(f"kty {kty!r} is not a public signing key type")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise ValueError(f"use {use!r} is not 'sig'")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ValueError("key_ops does not include 'verify'")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid is not a string")
    try:
        loaded: object = loader(dict(jwk))
    except (PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a valid {kty} key ({type(exc).__name__})") from None
    if isinstance(loaded, PRIVATE_KEY_TYPES):
        # A member that publishes private parameters: use only its public half.
        loaded = loaded.public_key()
    key = check_public_key(loaded)
    usable = public_key_algorithms(key) & allowed
    alg = jwk.get("alg")
    if alg is not None:
        if not isinstance(alg, str):
            raise ValueError("alg is not a string")
        if alg not in usable:
            raise ValueError(f"alg {alg!r} is not allowed for this provider and key type")
        usable = frozenset({alg})
    if not usable:
        raise ValueError("no configured algorithm fits this key type")
    return VerificationKey(key, usable, kid)


def parse_jwks(document: bytes, allowed: frozenset[str]) -> ParsedKeySet:
    """The usable keys of a JWKS document. ValueError when it is not a JWKS or has no usable
    key: the caller then keeps the keys it had rather than dropping them all."""
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError:
        raise ValueError("JWKS is not JSON") from None
    members = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(members, list):
        raise ValueError("JWKS has no 'keys' array")
    keys: list[VerificationKey] = []
    skipped: list[str] = []
    for index, member in enumerate(members):
        if len(keys) == MAX_KEYS:
            skipped.append(f"keys[{index}:]: more than {MAX_KEYS} keys")
            break
        if not isinstance(member, dict):
            skipped.append(f"keys[{index}]: not an object")
            continue
        try:
            keys.append(key_from_jwk(member, allowed))
        except ValueError as exc:
            skipped.append(f"keys[{index}]: {exc}")
    if not keys:
        raise ValueError("JWKS has no usable key: " + "; ".join(skipped or ["empty"]))
    by_kid: dict[str, list[VerificationKey]] = {}
    for key in keys:
        if key.kid is not None:
            by_kid.setdefault(key.kid, []).append(key)
    return ParsedKeySet(
        KeySet(tuple(keys), {kid: tuple(group) for kid, group in by_kid.items()}),
        tuple(skipped),
    )
