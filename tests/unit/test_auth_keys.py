"""Provider key configuration: algorithms must fit the key, and only public keys are taken."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from propylon.auth import Authenticator
from propylon.auth.keys import load_public_key_pem, static_key
from propylon.config.model import JwtProviderSpec

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def public_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (JwtProviderSpec("p", ("RS256", "HS256"), public_key_pem=public_pem(RSA_KEY)), "HS256"),
        (JwtProviderSpec("p", ("HS256",), jwks_url="http://127.0.0.1:1/jwks"), "shared secret"),
        (JwtProviderSpec("p", ("RS256",), secret=b"k" * 32), "public key"),
        (JwtProviderSpec("p", ("none",), secret=b"k" * 32), "unsupported algorithm"),
        (JwtProviderSpec("p", ("None",), public_key_pem=public_pem(RSA_KEY)), "unsupported"),
        (JwtProviderSpec("p", (), secret=b"k" * 32), "no algorithms"),
        (JwtProviderSpec("p", ("HS256",)), "exactly one"),
        (
            JwtProviderSpec("p", ("HS256",), secret=b"k" * 32, jwks_url="http://127.0.0.1:1/"),
            "exactly one",
        ),
        (JwtProviderSpec("p", ("ES256",), public_key_pem=public_pem(RSA_KEY)), "ES256"),
        (JwtProviderSpec("p", ("ES384",), public_key_pem=public_pem(EC_KEY)), "ES384"),
        (JwtProviderSpec("p", ("RS256",), public_key_pem=public_pem(ED_KEY)), "RS256"),
        (JwtProviderSpec("p", ("HS256",), secret=public_pem(RSA_KEY)), "PEM"),
        (JwtProviderSpec("p", ("RS256",), public_key_pem=private_pem(RSA_KEY)), "private key"),
        (JwtProviderSpec("p", ("RS256",), public_key_pem=b"not a key"), "public key"),
    ],
)
def test_misconfigured_providers_are_refused_at_construction(
    spec: JwtProviderSpec, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        Authenticator({spec.name: spec})
    assert "'p'" in str(refused.value)  # the operator learns which provider


def test_short_rsa_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="1024 bits"):
        load_public_key_pem(public_pem(small))


def test_a_key_fits_every_algorithm_of_its_family() -> None:
    spec = JwtProviderSpec(
        "p", ("RS256", "RS512", "PS256", "PS384"), public_key_pem=public_pem(RSA_KEY)
    )
    key = static_key(spec)
    assert key is not None
    assert key.algorithms == {"RS256", "RS512", "PS256", "PS384"}
    assert isinstance(key.material, rsa.RSAPublicKey)


def test_a_certificate_pem_yields_its_public_key() -> None:
    key = load_public_key_pem(certificate_pem(RSA_KEY))
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.public_numbers() == RSA_KEY.public_key().public_numbers()


def test_a_public_key_file_is_read_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "issuer.pem"
    path.write_bytes(public_pem(EC_KEY))
    key = static_key(JwtProviderSpec("p", ("ES256",), public_key_file=str(path)))
    assert key is not None
    assert isinstance(key.material, ec.EllipticCurvePublicKey)
    assert key.algorithms == {"ES256"}


def test_a_missing_public_key_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="provider 'p': cannot read"):
        static_key(JwtProviderSpec("p", ("ES256",), public_key_file=str(tmp_path / "nope.pem")))


def test_a_jwks_provider_has_no_static_key() -> None:
    spec = JwtProviderSpec("p", ("RS256", "ES256"), jwks_url="http://127.0.0.1:1/jwks")
    assert static_key(spec) is None
