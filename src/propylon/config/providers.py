"""Building JWT providers, whichever format (or the environment) describes them.

Algorithms are pinned per provider and must fit the key: HMAC algorithms only with a shared
secret, RSA/EC/EdDSA algorithms only with a public key or a JWKS. That rule is what makes
HS/RS key confusion (verifying an HS256 token with the RSA public key as the HMAC secret)
impossible by construction. ``none`` is never accepted.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from propylon.config import values
from propylon.config.model import JwtProviderSpec

HMAC = ("HS256", "HS384", "HS512")
RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_CURVES = {
    "ES256": "secp256r1",
    "ES256K": "secp256k1",
    "ES384": "secp384r1",
    "ES512": "secp521r1",
    "ES521": "secp521r1",
}
OKP = ("EdDSA",)
KNOWN = (*HMAC, *RSA, *EC_CURVES, *OKP)
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}

Report = Callable[[str, str], None]
"""``report(field, message)``: field is one of the ProviderInput attribute names."""


@dataclass(frozen=True, slots=True)
class ProviderInput:
    """A provider as written, before its key material is checked."""

    name: str
    secret: bytes | None = None
    public_key_file: str | None = None
    jwks_url: str | None = None
    algorithms: tuple[str, ...] | None = None
    issuer: str | None = None
    audience: tuple[str, ...] = ()
    leeway: float = 0.0
    jwks_refresh_interval: float = 300.0
    jwks_min_refresh_interval: float = 30.0
    jwks_timeout: float = 5.0


def build_provider(
    given: ProviderInput, error: Report, warning: Report, *, key_fields: str
) -> JwtProviderSpec | None:
    """The checked provider, or None after reporting why it cannot be built.

    ``key_fields`` names the three key-source settings as the user writes them, for the
    "exactly one of" message.
    """
    sources = [
        field
        for field, value in (
            ("secret", given.secret),
            ("public_key_file", given.public_key_file),
            ("jwks_url", given.jwks_url),
        )
        if value is not None
    ]
    if len(sources) != 1:
        which = "none" if not sources else "several"
        error(
            "secret" if not sources else sources[1],
            f"provider {given.name!r} needs exactly one key source ({key_fields}); {which} given",
        )
        return None
    ok = True
    pem: bytes | None = None
    if given.secret is not None:
        kind = "secret"
        if not given.secret:
            error("secret", "the secret is empty")
            ok = False
    elif given.public_key_file is not None:
        try:
            pem = Path(given.public_key_file).read_bytes()
            kind = _public_key_kind(pem)
        except OSError as exc:
            error(
                "public_key_file", f"cannot read {given.public_key_file!r}: {exc.strerror or exc}"
            )
            return None
        except ValueError as exc:
            error("public_key_file", f"{given.public_key_file!r}: {exc}")
            return None
    else:
        kind = "jwks"
        assert given.jwks_url is not None
        try:
            url = values.http_url(given.jwks_url, what="JWKS URL")
        except ValueError as exc:
            error("jwks_url", str(exc))
            ok = False
        else:
            if url.scheme.lower() == "http" and not _loopback(url.hostname or ""):
                warning(
                    "jwks_url",
                    "JWKS fetched over plain http: anyone on the network path "
                    "can substitute signing keys; use https",
                )
    algorithms = given.algorithms if given.algorithms is not None else _default(kind)
    if not _check_algorithms(algorithms, kind, error):
        ok = False
    if given.secret and kind == "secret" and ok:
        strongest = max(algorithms, key=_HMAC_MIN_BYTES.__getitem__)
        need = _HMAC_MIN_BYTES[strongest]
        if len(given.secret) < need:
            warning(
                "secret",
                f"secret is {len(given.secret)} bytes; {strongest} wants at "
                f"least {need} (RFC 7518 s.3.2)",
            )
    if not math.isfinite(given.leeway) or given.leeway < 0:
        # Infinite leeway would switch the expiry check off.
        error("leeway", f"leeway must be a finite number >= 0 seconds, got {given.leeway}")
        ok = False
    if not ok:
        return None
    return JwtProviderSpec(
        name=given.name,
        algorithms=algorithms,
        secret=given.secret,
        public_key_pem=pem,
        public_key_file=given.public_key_file,
        jwks_url=given.jwks_url.strip() if given.jwks_url is not None else None,
        issuer=given.issuer,
        audience=given.audience,
        leeway=given.leeway,
        jwks_refresh_interval=given.jwks_refresh_interval,
        jwks_min_refresh_interval=given.jwks_min_refresh_interval,
        jwks_timeout=given.jwks_timeout,
    )


def _default(kind: str) -> tuple[str, ...]:
    return ("HS256",) if kind == "secret" else ("RS256",)


def _check_algorithms(algorithms: tuple[str, ...], kind: str, error: Report) -> bool:
    if not algorithms:
        error("algorithms", "at least one algorithm is required")
        return False
    for name in algorithms:
        if name.lower() == "none":
            error("algorithms", "'none' is never accepted: unsigned tokens prove nothing")
            return False
        if name not in KNOWN:
            error("algorithms", f"unknown algorithm {name!r}; known: {', '.join(KNOWN)}")
            return False
        fits = {
            "secret": name in HMAC,
            "jwks": name not in HMAC,
            "rsa": name in RSA,
            "okp": name in OKP,
        }.get(kind, EC_CURVES.get(name) == kind)
        if not fits:
            error("algorithms", _mismatch(name, kind))
            return False
    return True


def _mismatch(name: str, kind: str) -> str:
    if kind == "secret":
        return f"{name} needs a public key or JWKS; a shared secret can only verify HS256/384/512"
    if name in HMAC:
        return (
            f"{name} is an HMAC algorithm and cannot be used with a public key or JWKS "
            "(that is the HS/RS key-confusion attack)"
        )
    key = {"rsa": "an RSA", "okp": "an EdDSA", "jwks": "a JWKS"}.get(kind, f"an EC {kind}")
    return f"{name} does not fit {key} key"


def _public_key_kind(pem: bytes) -> str:
    """``rsa``, ``okp`` or the EC curve name of a PEM public key or certificate."""
    if b"PRIVATE KEY-----" in pem:
        raise ValueError(
            "contains a private key; give the public key (openssl pkey -in key.pem -pubout)"
        )
    key: PublicKeyTypes
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = load_pem_public_key(pem)
    except ValueError:
        raise ValueError("not a PEM public key or certificate") from None
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "okp"
    raise ValueError(f"unsupported key type {type(key).__name__}")


def _loopback(host: str) -> bool:
    """Plain http to this machine crosses no network, so it is not worth a warning."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
