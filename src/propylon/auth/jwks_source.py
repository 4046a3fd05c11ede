"""A provider's JWKS, fetched over HTTP and kept current.

Fetched at start, again every ``jwks_refresh_interval`` in the background, and on demand when
a token names an unknown ``kid`` (at most once per ``jwks_min_refresh_interval``). A failed
fetch keeps the keys already held: an identity provider's outage must not lock every user
out of the gateway while their tokens are still valid. Concurrent reasons to fetch share one
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from propylon.auth.jwks import KeySet, parse_jwks
from propylon.config.model import JwtProviderSpec

log = logging.getLogger("propylon.auth")

MAX_JWKS_BYTES = 1024 * 1024


class JwksSource:
    def __init__(
        self,
        spec: JwtProviderSpec,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        on_keys_withdrawn: Callable[[], None] | None = None,
    ) -> None:
        """``on_keys_withdrawn`` runs when a refresh drops a key that was held before."""
        assert spec.jwks_url is not None
        self.spec = spec
        self.url = spec.jwks_url
        self.keys = KeySet()
        self._allowed = frozenset(spec.algorithms)
        self._monotonic = monotonic
        self._on_keys_withdrawn = on_keys_withdrawn
        self._session: aiohttp.ClientSession | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._background: asyncio.Task[None] | None = None
        self._last_kid_refresh = -float("inf")
        self.fetches = 0
        """Fetches attempted, successful or not (for tests and operators)."""

    @property
    def _where(self) -> str:
        # Query strings of key URLs sometimes carry API keys; keep them out of logs.
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    async def start(self, session: aiohttp.ClientSession) -> None:
        """First fetch (failure logged, not raised), then the background refresh loop."""
        self._session = session
        await self.fetch()
        self._background = asyncio.create_task(
            self._refresh_periodically(), name=f"jwks-refresh-{self.spec.name}"
        )

    async def close(self) -> None:
        for task in (self._background, self._inflight):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._background = self._inflight = None
        self._session = None

    def may_refresh_for_unknown_kid(self) -> bool:
        """Whether ``refresh_for_unknown_kid`` would fetch (or join a fetch under way)."""
        if self._session is None:
            return False
        if self._inflight is not None:
            return True
        return self._monotonic() - self._last_kid_refresh >= self.spec.jwks_min_refresh_interval

    async def refresh_for_unknown_kid(self) -> None:
        """Fetch because a token named an unknown ``kid``; no-op within the minimum interval."""
        if self._inflight is None:
            now = self._monotonic()
            if now - self._last_kid_refresh < self.spec.jwks_min_refresh_interval:
                return
            self._last_kid_refresh = now
        await self.fetch()

    async def fetch(self) -> bool:
        """Fetch now, or join the fetch under way; True when fresh keys were installed."""
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch_and_install())
            self._inflight.add_done_callback(self._fetch_done)
        # Shielded: one waiter being cancelled (its client went away) must not cancel the
        # fetch the other waiters share.
        return await asyncio.shield(self._inflight)

    def _fetch_done(self, task: asyncio.Task[bool]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _fetch_and_install(self) -> bool:
        session = self._session
        if session is None:
            return False
        self.fetches += 1
        try:
            async with asyncio.timeout(self.spec.jwks_timeout):
                document = await self._download(session)
            parsed = parse_jwks(document, self._allowed)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "JWKS of provider %s from %s not refreshed (%s); keeping %d key(s)",
                self.spec.name,
                self._where,
                exc if isinstance(exc, ValueError) else type(exc).__name__,
                len(self.keys.keys),
            )
            return False
        for reason in parsed.skipped:
            log.warning("JWKS of provider %s: skipped %s", self.spec.name, reason)
        withdrawn = any(old not in parsed.keys.keys for old in self.keys.keys)
        self.keys = parsed.keys
        if withdrawn:
            log.info("JWKS of provider %s: a key was withdrawn", self.spec.name)
            if self._on_keys_withdrawn is not None:
                self._on_keys_withdrawn()
        return True

    async def _download(self, session: aiohttp.ClientSession) -> bytes:
        async with session.get(
            self.url,
            timeout=aiohttp.ClientTimeout(total=self.spec.jwks_timeout),
            headers={"Accept": "application/json, application/jwk-set+json"},
            max_redirects=3,
        ) as response:
            if response.status != 200:
                raise ValueError(f"HTTP status {response.status}")
            if (response.content_length or 0) > MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            body = bytearray()
            async for chunk in response.content.iter_any():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS document too large")
            return bytes(body)

    async def _refresh_periodically(self) -> None:
        interval = self.spec.jwks_refresh_interval
        # After a failure, try again sooner: until keys arrive every token of this provider fails.
        retry = min(interval, max(self.spec.jwks_min_refresh_interval, 0.01))
        ok = bool(self.keys.keys)
        while True:
            await asyncio.sleep(interval if ok else retry)
            ok = await self.fetch()
