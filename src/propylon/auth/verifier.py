"""Verifying one token against one provider: key choice, signature, registered claims.

The signature is checked by PyJWT's algorithm objects, always the one algorithm the token
names and only when the provider allows it and the key's type fits it, never an algorithm
derived from the token alone. Header members that point at keys (``jku``, ``x5u``, ``jwk``,
``x5c``) are never read: keys come only from the provider's configuration. The registered
claims are checked here, with PyJWT's rules (``exp`` required; ``nbf``, ``iat``, ``iss``,
``aud``, ``sub``, ``jti`` when present or configured), against the gateway's clock, and
with numbers required to be JSON numbers (PyJWT would take ``"99"`` or ``true``).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jwt.algorithms import Algorithm, get_default_algorithms

from propylon.auth.compact_jws import CompactJws
from propylon.auth.failures import AuthFailure, KeyRefreshNeeded
from propylon.auth.keys import SUPPORTED_ALGORITHMS, VerificationKey, static_key
from propylon.auth.principal import Principal, principal_from_claims
from propylon.config.model import JwtProviderSpec

if TYPE_CHECKING:
    from propylon.auth.jwks_source import JwksSource

_ALGORITHMS: Mapping[str, Algorithm] = get_default_algorithms()
if not _ALGORITHMS.keys() >= SUPPORTED_ALGORITHMS:
    # PyJWT offers the asymmetric algorithms only when `cryptography` is importable.
    raise ImportError("PyJWT lacks asymmetric algorithms: is the cryptography package installed?")


_HMAC_DIGESTS: Mapping[str, str] = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    # An int is always finite, however long (math.isfinite would overflow on it).
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _seconds(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim in whole seconds (truncated, as PyJWT compares them), None when
    absent; AuthFailure when present but not a finite number. As a float, so that it
    compares with the clock the same way compiled and interpreted (compiled code turns an
    int into a float to compare it with one); an int beyond any float is +-inf, which
    compares with any real clock as the int would."""
    if name not in claims:
        return None
    value = claims[name]
    if not _is_number(value):
        raise AuthFailure(f"{name} is not a number")
    whole = int(value)
    try:
        return float(whole)
    except OverflowError:
        return math.inf if whole > 0 else -math.inf


class ProviderVerifier:
    """One provider's verification. Built at start-up; ValueError when misconfigured."""

    def __init__(
        self, spec: JwtProviderSpec, *, on_keys_withdrawn: Callable[[], None] | None = None
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.algorithms = frozenset(spec.algorithms)
        self.static_key = static_key(spec)
        self.jwks: JwksSource | None = None
        if self.static_key is None:
            # Imported only for a JWKS provider: the key-fetching client (aiohttp) costs a
            # worker about 20 MiB of RSS that a static-key gateway never needs.
            from propylon.auth.jwks_source import JwksSource

            self.jwks = JwksSource(spec, on_keys_withdrawn=on_keys_withdrawn)
        # HMAC tokens are checked with the standard library's HMAC (OpenSSL underneath), as
        # PyJWT's HMACAlgorithm.verify does, but keyed once here and copied per token: with
        # OpenSSL 3, keying a fresh HMAC (what PyJWT and hmac.digest do per call) looks the
        # digest up again every time, which cost more than the rest of a cache miss.
        self._keyed_hmacs: dict[str, hmac.HMAC] = {}
        if self.static_key is not None and isinstance(self.static_key.material, bytes):
            for alg, digest in _HMAC_DIGESTS.items():
                if alg in self.algorithms:
                    self._keyed_hmacs[alg] = hmac.new(self.static_key.material, digestmod=digest)
        self._audience = frozenset(spec.audience) or None
        self.signature_checks = 0
        """Signatures checked so far: the expensive step the token cache exists to skip."""
        self._leeway = spec.leeway

    def verify(self, token: CompactJws, now: float) -> Principal:
        """The principal of ``token``, or AuthFailure; KeyRefreshNeeded when only a JWKS
        refresh could help."""
        header = token.header
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthFailure("algorithm not allowed")
        algorithm = _ALGORITHMS[alg]
        keyed = self._keyed_hmacs.get(alg)
        for key in self._candidates(header, alg):
            self.signature_checks += 1
            try:
                if keyed is not None and key is self.static_key:
                    mac = keyed.copy()
                    mac.update(token.signing_input)
                    valid = hmac.compare_digest(token.signature, mac.digest())
                else:
                    valid = algorithm.verify(token.signing_input, key.material, token.signature)
            except (ValueError, TypeError):
                valid = False
            if valid:
                claims = token.claims()
                expires_at = self._check_claims(claims, now)
                return principal_from_claims(claims, self.name, expires_at)
            # A kid-less token: another candidate may be the signer.
        raise AuthFailure("bad signature")

    def _candidates(self, header: Mapping[str, Any], alg: str) -> tuple[VerificationKey, ...]:
        """Keys that may verify ``alg``, the algorithm-confusion guard: a JWKS key only when
        its type fits ``alg``; the static key's algorithms are the provider's, which
        ``verify`` checked ``alg`` against."""
        if self.static_key is not None:
            return (self.static_key,)
        assert self.jwks is not None
        kid = header.get("kid")  # a string or None: parse_compact_jws refused anything else
        keys = self.jwks.keys.candidates(kid, alg)
        if keys:
            return keys
        if kid is not None and self.jwks.keys.knows(kid):
            # The key exists but not for this algorithm: a refresh would not change that.
            raise AuthFailure("algorithm does not fit the key")
        if self.jwks.may_refresh_for_unknown_kid():
            raise KeyRefreshNeeded("unknown kid", (self.jwks.refresh_for_unknown_kid,))
        raise AuthFailure("unknown kid")

    def _check_claims(self, claims: Mapping[str, Any], now: float) -> float:
        """AuthFailure unless the registered claims hold at ``now``; returns ``exp`` as
        compared (whole seconds, a float, +-inf beyond the float range)."""
        if claims.get("exp") is None:
            raise AuthFailure("required claim missing")
        exp = _seconds(claims, "exp")
        assert exp is not None
        leeway = self._leeway
        if exp <= now - leeway:  # PyJWT's form of the comparison
            raise AuthFailure("token expired")
        nbf = _seconds(claims, "nbf")
        if nbf is not None and nbf > now + leeway:
            raise AuthFailure("token not yet valid")
        iat = _seconds(claims, "iat")
        if iat is not None and iat > now + leeway:
            raise AuthFailure("token not yet valid")
        issuer = self.spec.issuer
        if issuer is not None:
            iss = claims.get("iss")
            if iss is None:
                raise AuthFailure("required claim missing")
            if iss != issuer:
                raise AuthFailure("wrong issuer")
        aud = claims.get("aud")
        if self._audience is None:
            if aud:
                # A token meant for a named audience, at a provider that expects none.
                raise AuthFailure("wrong audience")
        else:
            if not aud:
                raise AuthFailure("required claim missing")
            audiences = [aud] if isinstance(aud, str) else aud
            if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
                raise AuthFailure("wrong audience")
            if self._audience.isdisjoint(audiences):
                raise AuthFailure("wrong audience")
        for name in ("sub", "jti"):
            if name in claims and not isinstance(claims[name], str):
                raise AuthFailure(f"{name} is not a string")
        return exp

    def cache_deadline(self, principal: Principal) -> float:
        """Until when a verified token may be served from the cache."""
        return principal.expires_at + self._leeway
