"""Verifying one token against one provider: key choice, signature, registered claims.

PyJWT checks the signature and ``exp``/``nbf``/``iat``/``iss``/``aud``. It is always given a
single algorithm, one the provider allows and the chosen key's type fits, never one derived
from the token alone. Header members that point at keys (``jku``, ``x5u``, ``jwk``, ``x5c``)
are never read: keys come only from the provider's configuration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import jwt
from jwt import exceptions as jwt_errors

from propylon.auth.failures import AuthFailure, KeyRefreshNeeded
from propylon.auth.keys import VerificationKey, static_key
from propylon.auth.principal import Principal, principal_from_claims
from propylon.config.model import JwtProviderSpec

if TYPE_CHECKING:
    from propylon.auth.jwks_source import JwksSource

# Fixed phrases only: PyJWT's own messages may quote claim values from the token.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt_errors.ExpiredSignatureError, "token expired"),
    (jwt_errors.ImmatureSignatureError, "token not yet valid"),
    (jwt_errors.InvalidAudienceError, "wrong audience"),
    (jwt_errors.InvalidIssuerError, "wrong issuer"),
    (jwt_errors.MissingRequiredClaimError, "required claim missing"),
    (jwt_errors.InvalidSignatureError, "bad signature"),
    (jwt_errors.InvalidAlgorithmError, "algorithm not allowed"),
)


def failure_reason(exc: Exception) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "invalid token"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
        self._audience = list(spec.audience) or None
        self._leeway = spec.leeway
        required = ["exp"]
        if spec.issuer is not None:
            required.append("iss")
        if spec.audience:
            required.append("aud")
        self._jwt = jwt.PyJWT(options={"require": required})

    def verify(self, token: bytes, header: Mapping[str, Any], now: float) -> Principal:
        """The principal of ``token`` (whose unverified ``header`` the caller parsed), or
        AuthFailure; KeyRefreshNeeded when only a JWKS refresh could help."""
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthFailure("algorithm not allowed")
        keys = self._candidates(header, alg)
        last: Exception | None = None
        for key in keys:
            try:
                claims = self._jwt.decode(
                    token,
                    key.material,
                    algorithms=(alg,),
                    audience=self._audience,
                    issuer=self.spec.issuer,
                    leeway=self._leeway,
                )
            except jwt_errors.InvalidSignatureError as exc:
                last = exc  # a kid-less token: another candidate may be the signer
                continue
            except (jwt_errors.PyJWTError, ValueError, TypeError) as exc:
                raise AuthFailure(failure_reason(exc)) from None
            self._check_times(claims, now)
            return principal_from_claims(claims, self.name)
        raise AuthFailure(failure_reason(last) if last else "no key for token")

    def _candidates(self, header: Mapping[str, Any], alg: str) -> tuple[VerificationKey, ...]:
        if self.static_key is not None:
            return (self.static_key,)
        assert self.jwks is not None
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthFailure("kid is not a string")
        keys = self.jwks.keys.candidates(kid, alg)
        if keys:
            return keys
        if kid is not None and self.jwks.keys.knows(kid):
            # The key exists but not for this algorithm: a refresh would not change that.
            raise AuthFailure("algorithm does not fit the key")
        if self.jwks.may_refresh_for_unknown_kid():
            raise KeyRefreshNeeded("unknown kid", (self.jwks.refresh_for_unknown_kid,))
        raise AuthFailure("unknown kid")

    def _check_times(self, claims: Mapping[str, Any], now: float) -> None:
        """``exp`` and ``nbf`` again, as numbers, against the gateway's clock.

        PyJWT accepted them against the system clock and coerces with ``int()`` (so ``"99"``
        or ``true`` would pass); the cache expires entries by the gateway's clock, and both
        must agree for a cached token to die exactly when a fresh one would be refused.
        """
        exp = claims.get("exp")
        if not _is_number(exp):
            raise AuthFailure("exp is not a number")
        assert isinstance(exp, int | float)
        if exp + self._leeway <= now:
            raise AuthFailure("token expired")
        nbf = claims.get("nbf")
        if nbf is not None:
            if not _is_number(nbf):
                raise AuthFailure("nbf is not a number")
            assert isinstance(nbf, int | float)
            if nbf > now + self._leeway:
                raise AuthFailure("token not yet valid")

    def cache_deadline(self, principal: Principal) -> float:
        """Until when a verified token may be served from the cache."""
        return principal.expires_at + self._leeway
