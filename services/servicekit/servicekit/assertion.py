"""The signed hop: verifying what the gateway asserts about the caller.

Without it a service believes the `User` header, so anything that can reach its port can
act as anyone. With it, the gateway sends a short-lived JWT it signed with its own Ed25519
key, and the service believes only that:

- header `X-Gateway-Assertion: <compact JWS>`;
- JOSE header `alg: EdDSA` (nothing else is accepted), `typ: gateway-assertion+jwt`,
  `kid` = the RFC 7638 thumbprint of the signing key;
- claims `iss` (the gateway, default `propylon`), `aud` (this service's name: a service
  accepts only its own), `sub` (the caller's username), `iat`, `exp` (required), optional
  `nbf`, and `role` / `scope` (strings) when the caller's token had them.

The gateway's public keys come from its JWKS URL (its operations listener serves
`/.well-known/jwks.json`: fetched with a timeout, cached, re-fetched on an unknown `kid`
at most once per interval) or from a file holding a JWK set or PEM public keys (`make run`,
where the gateway writes its key next to the other state; re-read when it changes).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from servicekit.environment import SettingError, env_int, env_optional, env_str

log = logging.getLogger("servicekit.assertion")

ASSERTION_HEADER = "X-Gateway-Assertion"
ASSERTION_TYPE = "gateway-assertion+jwt"
ALGORITHM = "EdDSA"
DEFAULT_ISSUER = "propylon"
DEFAULT_LEEWAY_SECONDS = 5
# An assertion is a few hundred bytes; anything far larger is not one.
MAX_ASSERTION_BYTES = 8192
MAX_JWKS_BYTES = 256 * 1024

JWKS_URL_ENV = "SERVICEKIT_GATEWAY_JWKS_URL"
KEYS_FILE_ENV = "SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE"
ISSUER_ENV = "SERVICEKIT_GATEWAY_ISSUER"
LEEWAY_ENV = "SERVICEKIT_GATEWAY_LEEWAY_SECONDS"


class KeyMaterialError(ValueError):
    """Key material that cannot be used (malformed file, JWK set, ...)."""


class InvalidAssertion(Exception):
    """Why an assertion was refused; logged, never shown to the client."""


@dataclass(frozen=True, slots=True)
class Assertion:
    subject: str
    role: str | None
    scopes: tuple[str, ...]
    claims: Mapping[str, Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of an Ed25519 key (RFC 8037 members: crv, kty, x)."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw_public_bytes(key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw_public_bytes(key)),
        "kid": thumbprint(key),
        "use": "sig",
        "alg": ALGORITHM,
    }


def _keys_from_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyMaterialError("not a JWK set (an object with a 'keys' list)")
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            raise KeyMaterialError("a JWK set entry is not an object")
        # Keys for other purposes may share the set; only Ed25519 signing keys are ours.
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        x = entry.get("x")
        if not isinstance(x, str):
            raise KeyMaterialError("an Ed25519 JWK has no 'x'")
        try:
            key = Ed25519PublicKey.from_public_bytes(_b64url_decode(x))
        except ValueError:
            raise KeyMaterialError("an Ed25519 JWK's 'x' is not a public key") from None
        # Indexed by the thumbprint, which commits to the key, and by the kid it was given.
        keys[thumbprint(key)] = key
        kid = entry.get("kid")
        if isinstance(kid, str) and kid:
            keys[kid] = key
    return keys


def _keys_from_pem(data: bytes) -> dict[str, Ed25519PublicKey]:
    marker = b"-----END PUBLIC KEY-----"
    blocks = [block + marker for block in data.split(marker) if block.strip()]
    if not blocks:
        raise KeyMaterialError("no PEM public key in it")
    keys: dict[str, Ed25519PublicKey] = {}
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block.strip())
        except ValueError:
            raise KeyMaterialError("a PEM block is not a public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyMaterialError("a PEM public key is not an Ed25519 key")
        keys[thumbprint(key)] = key
    return keys


def parse_keys(data: bytes) -> dict[str, Ed25519PublicKey]:
    """A JWK set (JSON) or one or more PEM public keys, indexed by kid."""
    if data.lstrip().startswith(b"{"):
        try:
            document = json.loads(data)
        except ValueError:
            raise KeyMaterialError("not valid JSON") from None
        return _keys_from_jwks(document)
    return _keys_from_pem(data)


class KeySource(Protocol):
    description: str

    def key(self, kid: str) -> Ed25519PublicKey | None: ...

    def load(self) -> None:
        """At start-up: load what can be loaded now; raise KeyMaterialError for bad material."""


class FileKeys:
    """Keys from a file, re-read when its modification time or size changes."""

    def __init__(
        self,
        path: Path,
        *,
        recheck_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.description = f"{KEYS_FILE_ENV}={path}"
        self._recheck = recheck_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._bad: tuple[int, int] | None = None
        self._checked = -float("inf")
        self._keys: dict[str, Ed25519PublicKey] = {}

    def _signature(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _refresh(self, *, strict: bool) -> None:
        signature = self._signature()
        if signature == self._seen:
            return
        if signature is None:
            log.warning(
                "gateway key file %s does not exist (yet): assertions are refused", self.path
            )
            self._keys, self._seen = {}, None
            return
        try:
            keys = parse_keys(self.path.read_bytes())
        except (KeyMaterialError, OSError) as exc:
            if strict:
                raise KeyMaterialError(f"gateway key file {self.path}: {exc}") from None
            # A bad rewrite while running keeps the keys that worked, loudly (once per
            # version of the file); it is read again next time, in case it was half-written.
            if signature != self._bad:
                log.error(
                    "gateway key file %s is unusable (%s): keeping the previous keys",
                    self.path,
                    exc,
                )
                self._bad = signature
            return
        self._keys, self._seen = keys, signature

    def load(self) -> None:
        with self._lock:
            self._refresh(strict=True)
            self._checked = self._clock()

    def key(self, kid: str) -> Ed25519PublicKey | None:
        with self._lock:
            # A stat at most once per interval notices a rewritten file soon enough.
            now = self._clock()
            if now - self._checked >= self._recheck:
                self._checked = now
                self._refresh(strict=False)
            return self._keys.get(kid)


def fetch_url(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (config)
        data: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise KeyMaterialError(f"the JWK set is larger than {MAX_JWKS_BYTES} bytes")
    return data


class JwksUrlKeys:
    """Keys from a JWKS URL: cached for `max_age`, fetched again sooner for an unknown kid,
    but never more often than once per `min_interval` (an unknown kid is cheap to send)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        max_age: float = 300.0,
        min_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.description = f"{JWKS_URL_ENV}={url}"
        self._timeout = timeout
        self._max_age = max_age
        self._min_interval = min_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched = -float("inf")
        self._attempted = -float("inf")

    def _refresh(self, now: float) -> None:
        self._attempted = now
        try:
            keys = parse_keys(fetch_url(self.url, self._timeout))
        except (KeyMaterialError, OSError, http.client.HTTPException, ValueError) as exc:
            # Unreachable or garbled: the keys already known stay in use (they may be stale,
            # but a restart of the gateway must not take every service down with it).
            log.warning("could not fetch the gateway's keys from %s: %s", self.url, exc)
            return
        self._keys, self._fetched = keys, now

    def load(self) -> None:
        # The gateway usually starts after the services: a failure here is not fatal.
        with self._lock:
            self._refresh(self._clock())

    def key(self, kid: str) -> Ed25519PublicKey | None:
        with self._lock:
            now = self._clock()
            stale = now - self._fetched >= self._max_age
            if (stale or kid not in self._keys) and now - self._attempted >= self._min_interval:
                self._refresh(now)
            return self._keys.get(kid)


class AssertionVerifier:
    def __init__(
        self,
        keys: KeySource,
        audience: str,
        issuer: str = DEFAULT_ISSUER,
        leeway: float = DEFAULT_LEEWAY_SECONDS,
    ) -> None:
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway

    def verify(self, token: str) -> Assertion:
        if len(token) > MAX_ASSERTION_BYTES:
            raise InvalidAssertion("too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidAssertion(f"malformed: {exc}") from None
        # Pinned before any key is chosen: no `none`, no HMAC keyed with a public key.
        if header.get("alg") != ALGORITHM:
            raise InvalidAssertion(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
        if header.get("typ") != ASSERTION_TYPE:
            raise InvalidAssertion(f"type {header.get('typ')!r} is not {ASSERTION_TYPE}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidAssertion("no kid")
        key = self.keys.key(kid)
        if key is None:
            raise InvalidAssertion(f"unknown kid {kid!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "aud", "iss"], "strict_aud": True},
            )
        except jwt.PyJWTError as exc:
            raise InvalidAssertion(str(exc)) from None
        subject, role, scope = claims["sub"], claims.get("role"), claims.get("scope")
        if not isinstance(subject, str):
            raise InvalidAssertion("sub is not a string")
        if role is not None and not isinstance(role, str):
            raise InvalidAssertion("role is not a string")
        if scope is not None and not isinstance(scope, str):
            raise InvalidAssertion("scope is not a string")
        return Assertion(subject, role, tuple((scope or "").split()), claims)


@dataclass(frozen=True, slots=True)
class GatewayTrust:
    """How a service learns who is calling: signed assertions, or (off) bare headers."""

    audience: str
    jwks_url: str | None = None
    keys_file: Path | None = None
    issuer: str = DEFAULT_ISSUER
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS

    @property
    def verifies(self) -> bool:
        return self.jwks_url is not None or self.keys_file is not None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], audience_variable: str, default_audience: str
    ) -> GatewayTrust:
        jwks_url = env_optional(environ, JWKS_URL_ENV)
        keys_file = env_optional(environ, KEYS_FILE_ENV)
        if jwks_url and keys_file:
            raise SettingError(f"set one of {JWKS_URL_ENV} and {KEYS_FILE_ENV}, not both")
        if jwks_url and not jwks_url.startswith(("http://", "https://")):
            raise SettingError(f"{JWKS_URL_ENV} must be an http:// or https:// URL")
        audience = env_str(environ, audience_variable, default_audience).strip()
        if not audience:
            raise SettingError(f"{audience_variable} must not be empty")
        return cls(
            audience=audience,
            jwks_url=jwks_url,
            keys_file=Path(keys_file) if keys_file else None,
            issuer=env_str(environ, ISSUER_ENV, DEFAULT_ISSUER),
            leeway_seconds=env_int(environ, LEEWAY_ENV, DEFAULT_LEEWAY_SECONDS, minimum=0),
        )

    def verifier(self) -> AssertionVerifier | None:
        source: KeySource
        if self.jwks_url:
            source = JwksUrlKeys(self.jwks_url)
        elif self.keys_file:
            source = FileKeys(self.keys_file)
        else:
            return None
        return AssertionVerifier(source, self.audience, self.issuer, self.leeway_seconds)
