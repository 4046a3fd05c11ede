"""The gateway's authentication entry point: bearer header in, ``Principal`` out.

Built once at start-up from the configured providers. The per-request path for a token seen
before is: one cache lookup per named provider and one expiry compare.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from propylon.auth.bearer import bearer_token
from propylon.auth.compact_jws import parse_compact_jws
from propylon.auth.failures import AuthFailure, KeyRefreshNeeded
from propylon.auth.keys import HMAC_ALGORITHMS
from propylon.auth.principal import Principal
from propylon.auth.token_cache import CANONICAL_SCHEME, TokenCache
from propylon.auth.verifier import ProviderVerifier
from propylon.config.model import JwtProviderSpec

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("propylon.auth")

MIN_HMAC_SECRET_BYTES = 32


class Authenticator:
    def __init__(
        self,
        providers: Mapping[str, JwtProviderSpec],
        *,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """ValueError when a provider's algorithms do not fit its key (checked here, before
        the gateway serves anything). Reads ``public_key_file`` keys."""
        self.cache = TokenCache(cache_size)
        self.verifiers = {
            # Routes name providers by their key in the mapping; the verifier goes by that name.
            name: ProviderVerifier(
                replace(spec, name=name),
                on_keys_withdrawn=partial(self.cache.forget_provider, name),
            )
            for name, spec in providers.items()
        }
        self._cached = self.cache.get
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        for spec in providers.values():
            if spec.secret is not None and len(spec.secret) < MIN_HMAC_SECRET_BYTES:
                log.warning(
                    "provider %s: the shared secret is %d bytes; RFC 7518 asks for at least"
                    " %d (the hash size) for %s",
                    spec.name,
                    len(spec.secret),
                    MIN_HMAC_SECRET_BYTES,
                    "/".join(a for a in spec.algorithms if a in HMAC_ALGORITHMS),
                )

    async def start(self) -> None:
        """Open the HTTP session and fetch every JWKS once (a failure is logged, not raised:
        the gateway starts and that provider's tokens fail until keys arrive); then keep the
        key sets fresh in the background."""
        sources = [v.jwks for v in self.verifiers.values() if v.jwks is not None]
        if not sources:
            return
        import aiohttp  # only JWKS providers need an HTTP client (see ProviderVerifier)

        # No cookies, no proxy from the environment: key fetches go where the config says.
        self._session = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(), trust_env=False, raise_for_status=False
        )
        await asyncio.gather(*(source.start(self._session) for source in sources))

    async def close(self) -> None:
        for verifier in self.verifiers.values():
            if verifier.jwks is not None:
                await verifier.jwks.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def authenticate(self, authorization: Sequence[bytes], providers: tuple[str, ...]) -> Principal:
        """The principal of the request's bearer token, verified by the first of ``providers``
        that accepts it. AuthFailure (-> 401), or KeyRefreshNeeded when a JWKS refresh might
        make it acceptable."""
        # The hot path: a header value seen before costs one dict lookup per provider and
        # one compare. Keys are canonical (``Bearer <token>``), made only once the token
        # parsed and verified.
        if len(authorization) == 1:
            value = authorization[0]
            now = self._clock()
            get = self._cached
            for name in providers:
                entry = get((value, name))
                if entry is not None and now < entry[1]:
                    return entry[0]
        else:
            now = self._clock()
        return self._verify(authorization, providers, now)

    async def authenticate_async(
        self, authorization: Sequence[bytes], providers: tuple[str, ...]
    ) -> Principal:
        """``authenticate``; on KeyRefreshNeeded, refresh the keys and try exactly once more."""
        try:
            return self.authenticate(authorization, providers)
        except KeyRefreshNeeded as needed:
            refreshing = needed
        # The await is outside the except block on purpose: compiled with mypyc, a coroutine
        # suspended inside an except block leaves the exception set as the worker's
        # "exception being handled", and every exception raised anywhere afterwards chains
        # onto it (holding its traceback, frames and request alive; a chain that grows with
        # each refresh requests wait for together). tests/unit/test_compiled_source.py
        # forbids the pattern.
        await refreshing.refresh()
        try:
            return self.authenticate(authorization, providers)
        except KeyRefreshNeeded as still:
            raise AuthFailure(still.reason) from None

    def _verify(
        self, authorization: Sequence[bytes], providers: tuple[str, ...], now: float
    ) -> Principal:
        raw = bearer_token(authorization)
        canonical = CANONICAL_SCHEME + raw
        if canonical != authorization[0]:
            # Another spelling of a token the cache may hold under its canonical key.
            get = self._cached
            for name in providers:
                entry = get((canonical, name))
                if entry is not None and now < entry[1]:
                    return entry[0]
        token = parse_compact_jws(raw)
        failure: AuthFailure | None = None
        refreshers: list[KeyRefreshNeeded] = []
        for name in providers:
            verifier = self.verifiers.get(name)
            if verifier is None:
                failure = failure or AuthFailure("unknown provider")
                continue
            try:
                principal = verifier.verify(token, now)
            except KeyRefreshNeeded as needed:
                refreshers.append(needed)
                continue
            except AuthFailure as refused:
                failure = refused
                continue
            self.cache.store(raw, principal, verifier.cache_deadline(principal))
            return principal
        if refreshers:
            raise KeyRefreshNeeded(
                refreshers[0].reason,
                tuple(r for needed in refreshers for r in needed.refreshers),
            )
        raise failure or AuthFailure("no provider")
