"""Signing material and bearer tokens for the JWT scenarios.

A fresh RSA key pair and HS256 secret per run, kept in the output folder: nothing secret is
checked in, and the gateway gets the public key the way a user gives it one
(``PROPYLON_JWT_PUBLIC_KEY``). Needs PyJWT and cryptography, which the project's virtualenv has.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

EXPIRES = 4102444800  # 2100-01-01: the tokens never expire during a run
SUBJECT = "user-42"
SCOPE = "profiles:read"


@dataclass(frozen=True, slots=True)
class SigningKeys:
    hs256_secret: str
    rs256_private: rsa.RSAPrivateKey
    """A key object, not PEM: loading a PEM checks the key, ~50 ms, which would make 10,000
    tokens take minutes."""
    rs256_public_file: Path

    def gateway_env(self, algorithm: str) -> dict[str, str]:
        """The environment that defines an Ocelot file's ``Bearer`` provider for propylon."""
        if algorithm == "HS256":
            return {"PROPYLON_JWT_SECRET": self.hs256_secret, "PROPYLON_JWT_ALGORITHMS": "HS256"}
        return {
            "PROPYLON_JWT_PUBLIC_KEY": str(self.rs256_public_file),
            "PROPYLON_JWT_ALGORITHMS": "RS256",
        }


def make_keys(folder: Path) -> SigningKeys:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_file = folder / "rs256-public.pem"
    public_file.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return SigningKeys(secrets.token_urlsafe(32), private, public_file)


def make_token(keys: SigningKeys, algorithm: str, subject: str = SUBJECT) -> str:
    claims = {"sub": subject, "exp": EXPIRES, "iat": 1700000000, "scope": SCOPE}
    key: str | rsa.RSAPrivateKey = keys.hs256_secret if algorithm == "HS256" else keys.rs256_private
    return jwt.encode(claims, key, algorithm=algorithm)


def rotation_subject(number: int) -> str:
    return f"user-{number:05d}"


def write_rotation(keys: SigningKeys, algorithm: str, count: int, path: Path) -> Path:
    """``count`` distinct tokens (one subject each), one per line, for rotate-tokens.lua."""
    if not path.exists():
        lines = (make_token(keys, algorithm, rotation_subject(n)) for n in range(count))
        path.write_text("\n".join(lines) + "\n")
    return path
