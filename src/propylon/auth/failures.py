"""Why a bearer token was not accepted.

Both exceptions become a 401 in the engine. ``reason`` is a short fixed phrase for logs and
tests; it never contains any part of the token, because tokens are credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class AuthFailure(Exception):
    """The request carries no acceptable bearer token (-> 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyRefreshNeeded(AuthFailure):
    """Verification needs a JWKS refresh (unknown ``kid``).

    Await ``refresh()`` then call ``authenticate`` again, once. Raised only when a refresh
    would actually fetch (or join a fetch already under way), so a flood of tokens with
    invented ``kid`` values cannot turn into a flood of JWKS requests.
    """

    def __init__(self, reason: str, refreshers: tuple[Callable[[], Awaitable[None]], ...]) -> None:
        super().__init__(reason)
        self.refreshers = refreshers

    async def refresh(self) -> None:
        """Fetch the key sets involved; respects ``jwks_min_refresh_interval``; never raises
        on a network error (the fetchers log and keep their stale keys)."""
        await asyncio.gather(*(refresh() for refresh in self.refreshers))
