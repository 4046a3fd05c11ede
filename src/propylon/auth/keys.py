"""Verification keys and which algorithms each may be used with.

The defence against algorithm confusion lives here: every key carries the set of algorithms
its type allows (an RSA key never lists HS256), and the verifier hands PyJWT exactly one
algorithm taken from that set. A public key therefore never reaches PyJWT's HMAC code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidKeyError

from propylon.config.model import JwtProviderSpec

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS_BY_CURVE = {
    "secp256r1": "ES256",
    "secp384r1": "ES384",
    "secp521r1": "ES512",
    "secp256k1": "ES256K",
}
OKP_ALGORITHMS = frozenset({"EdDSA"})
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHMS_BY_CURVE.values()) | OKP_ALGORITHMS
SUPPORTED_ALGORITHMS = HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS
MIN_RSA_BITS = 2048
"""NIST SP 800-131A; shorter RSA keys are refused rather than merely warned about."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    material: bytes | PublicKey
    """The HMAC secret, or a parsed public key (parsed once: PEM parsing per request would
    cost more than the signature check)."""
    algorithms: frozenset[str]
    """Algorithms this key verifies: its type's, narrowed to the provider's list and, for a
    JWK with an ``alg`` member, to that one algorithm."""
    kid: str | None = None


def public_key_algorithms(key: PublicKey) -> frozenset[str]:
    """The JWS algorithms a public key of this type and curve can verify."""
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = EC_ALGORITHMS_BY_CURVE.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    return OKP_ALGORITHMS


def check_public_key(key: object) -> PublicKey:
    """``key`` if it is a public key type we verify with, else ValueError."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits is below {MIN_RSA_BITS}")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in EC_ALGORITHMS_BY_CURVE:
            raise ValueError(f"unsupported elliptic curve {key.curve.name}")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key
    raise ValueError(f"unsupported public key type {type(key).__name__}")


def load_public_key_pem(pem: bytes) -> PublicKey:
    """A public key from a PEM ``PUBLIC KEY`` block or an X.509 certificate."""
    if b"PRIVATE KEY" in pem:
        # Refused outright: a gateway only verifies, and a private key in its config is a leak.
        raise ValueError("the PEM holds a private key; configure the public key")
    if b"-----BEGIN CERTIFICATE-----" in pem:
        return check_public_key(x509.load_pem_x509_certificate(pem).public_key())
    return check_public_key(load_pem_public_key(pem))


def check_algorithms(spec: JwtProviderSpec) -> None:
    """ValueError unless every algorithm of ``spec`` is supported and fits its key source."""
    if not spec.algorithms:
        raise ValueError(f"provider {spec.name!r}: no algorithms configured")
    unknown = [a for a in spec.algorithms if a not in SUPPORTED_ALGORITHMS]
    if unknown:
        # Covers "none" in any spelling: it is never a supported algorithm.
        raise ValueError(
            f"provider {spec.name!r}: unsupported algorithm(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(SUPPORTED_ALGORITHMS))}"
        )
    # A PEM and the file it was read from are one key source, not two.
    public_key = spec.public_key_pem if spec.public_key_pem is not None else spec.public_key_file
    sources = [s for s in (spec.secret, public_key, spec.jwks_url) if s is not None]
    if len(sources) != 1:
        raise ValueError(
            f"provider {spec.name!r}: set exactly one of secret, public key (PEM or file), JWKS URL"
        )
    symmetric = [a for a in spec.algorithms if a in HMAC_ALGORITHMS]
    asymmetric = [a for a in spec.algorithms if a in ASYMMETRIC_ALGORITHMS]
    if spec.secret is not None and asymmetric:
        raise ValueError(
            f"provider {spec.name!r}: {', '.join(asymmetric)} need a public key or a JWKS URL,"
            " not a shared secret"
        )
    if spec.secret is None and symmetric:
        raise ValueError(
            f"provider {spec.name!r}: {', '.join(symmetric)} need a shared secret; with a public"
            " key they would let anyone who knows the public key forge tokens"
        )


def static_key(spec: JwtProviderSpec) -> VerificationKey | None:
    """The provider's one configured key, or None for a JWKS provider. Reads
    ``public_key_file`` (start-up only). ValueError when the key does not fit the algorithms."""
    check_algorithms(spec)
    allowed = frozenset(spec.algorithms)
    if spec.secret is not None:
        if not spec.secret:
            raise ValueError(f"provider {spec.name!r}: the secret is empty")
        try:
            # PyJWT's own check, once here rather than per token: a "secret" that is a PEM or
            # SSH public key is the classic algorithm-confusion setup.
            secret = HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(spec.secret)
        except InvalidKeyError:
            raise ValueError(f"provider {spec.name!r}: the secret is a PEM or SSH key") from None
        return VerificationKey(secret, allowed)
    if spec.jwks_url is not None:
        return None
    if spec.public_key_pem is not None:
        pem = spec.public_key_pem
    else:
        assert spec.public_key_file is not None
        try:
            pem = Path(spec.public_key_file).read_bytes()
        except OSError as exc:
            raise ValueError(
                f"provider {spec.name!r}: cannot read {spec.public_key_file}: {exc.strerror}"
            ) from None
    try:
        key = load_public_key_pem(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"provider {spec.name!r}: public key: {exc}") from None
    usable = public_key_algorithms(key)
    misfits = sorted(allowed - usable)
    if misfits:
        raise ValueError(
            f"provider {spec.name!r}: {', '.join(misfits)} cannot be verified with this"
            f" {key_description(key)}; it fits {', '.join(sorted(usable))}"
        )
    return VerificationKey(key, allowed)


def key_description(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size} key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name} key"
    return "Ed25519 key" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448 key"
