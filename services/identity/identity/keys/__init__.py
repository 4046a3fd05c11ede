"""Signing keys: a directory of RSA private keys, the newest signs, all are published.

Each key is one PEM file named `signing-key-<nanoseconds>.pem`, so name order is age order,
created owner-only (0600) in an owner-only directory (0700).
Adding a file (`python -m identity.keys rotate --dir ...`) makes it the signer at once, while
the older keys stay in the JWKS so tokens they signed verify until they expire. Retire a key
by deleting its file once its tokens have expired (the access-token TTL after rotation).

A file that is not an RSA private key stops the service from starting, with its name. One
that turns up while the service runs is logged and left out; the keys that worked go on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger("identity.keys")

ALGORITHM = "RS256"
_PREFIX = "signing-key-"
_SUFFIX = ".pem"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    created_ns: int
    private_key: rsa.RSAPrivateKey

    @classmethod
    def from_pem(cls, pem: bytes, created_ns: int) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            # TypeError: an encrypted key (no password is ever given).
            raise KeyFileError(f"not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyFileError("not an RSA private key")
        return cls(kid=thumbprint(key.public_key()), created_ns=created_ns, private_key=key)

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file."""


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256): a kid that any party can recompute."""
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class KeyRing:
    keys: tuple[SigningKey, ...]  # oldest first

    @property
    def signer(self) -> SigningKey:
        return self.keys[-1]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in reversed(self.keys)]}


class KeyDirectory:
    """The key files on disk, re-read whenever the directory changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[str, ...] | None = None
        self._ring = KeyRing(())

    def _key_files(self) -> list[Path]:
        files = [p for p in self.path.glob(f"{_PREFIX}*{_SUFFIX}") if p.is_file()]
        return sorted(files, key=lambda p: p.name)

    def _load(self, files: list[Path]) -> tuple[tuple[SigningKey, ...], list[str]]:
        keys: list[SigningKey] = []
        problems: list[str] = []
        for path in files:
            try:
                stamp = int(path.name[len(_PREFIX) : -len(_SUFFIX)])
                keys.append(SigningKey.from_pem(path.read_bytes(), stamp))
            except (KeyFileError, OSError) as exc:
                problems.append(f"{path}: {exc}")
            except ValueError:
                problems.append(f"{path}: the name is not {_PREFIX}<nanoseconds>{_SUFFIX}")
        return tuple(keys), problems

    def check(self) -> None:
        """At start-up: every key file loads, or KeyFileError naming the bad ones."""
        files = self._key_files()
        for path in [self.path, *files]:
            # Private keys: owner-only, whatever an older version or a copy left behind.
            wanted = 0o700 if path.is_dir() else 0o600
            if path.stat().st_mode & 0o077:
                path.chmod(wanted)
                log.warning("%s was readable by others: made it %o", path, wanted)
        keys, problems = self._load(files)
        if problems:
            raise KeyFileError("unusable signing key file " + "; ".join(problems))
        with self._lock:
            self._ring, self._seen = KeyRing(keys), tuple(p.name for p in files)

    def ring(self) -> KeyRing:
        files = self._key_files()
        names = tuple(p.name for p in files)
        with self._lock:
            if names != self._seen:
                keys, problems = self._load(files)
                for problem in problems:
                    log.error("signing key file left out: %s", problem)
                self._ring, self._seen = KeyRing(keys), names
            if not self._ring.keys:
                raise LookupError(f"no signing keys in {self.path}")
            return self._ring

    def ensure_key(self) -> bool:
        """Create a first key if the directory has none; True when one was created."""
        if self._key_files():
            return False
        self.add_key()
        return True

    def add_key(self) -> SigningKey:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        created_ns = max(time.time_ns(), self._newest_ns() + 1)
        final = self.path / f"{_PREFIX}{created_ns:020d}{_SUFFIX}"
        partial = final.with_suffix(".tmp")
        # Written whole with owner-only permissions, then renamed so readers never see half.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        partial.replace(final)
        return SigningKey.from_pem(pem, created_ns)

    def _newest_ns(self) -> int:
        files = self._key_files()
        return int(files[-1].name[len(_PREFIX) : -len(_SUFFIX)]) if files else 0
