"""Verified tokens, remembered until they expire, so a repeated token costs a dict lookup.

Keyed by the raw ``Authorization`` header value (which holds the token) and the provider that
verified it: a token is served from the cache only to a route that trusts that provider.
Keying by the value as received lets a hit skip even the header parsing: the value was
parsed and the token verified when the entry was made. Bounded: when full, the oldest entry
goes (insertion order, O(1)); a hit does not reorder, which keeps hits cheap, and a token
that keeps being used is simply verified again after eviction. Failures are never cached:
a JWKS refresh may make a refused token good a moment later.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from propylon.auth.principal import Principal

CacheEntry = tuple[Principal, float]
"""The principal and the epoch second from which it may no longer be served."""


class TokenCache:
    __slots__ = ("_entries", "capacity", "get")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("token cache size must be >= 0")
        self.capacity = capacity
        self._entries: OrderedDict[tuple[bytes, str], CacheEntry] = OrderedDict()
        self.get: Callable[[tuple[bytes, str]], CacheEntry | None] = self._entries.get
        """``get((header_value, provider))``: the raw entry, for the hot path, which compares
        the deadline itself rather than pay for another call."""

    def __len__(self) -> int:
        return len(self._entries)

    def store(self, header_value: bytes, principal: Principal, deadline: float) -> None:
        """Remember ``principal`` for ``header_value`` until ``deadline`` (epoch seconds)."""
        if self.capacity == 0:
            return
        entries = self._entries
        key = (header_value, principal.provider)
        if key in entries:
            del entries[key]  # re-inserted at the young end
        elif len(entries) >= self.capacity:
            entries.popitem(last=False)
        entries[key] = (principal, deadline)

    def forget_provider(self, provider: str) -> None:
        """Drop every entry ``provider`` verified: its keys changed, and a token signed by a
        withdrawn key must stop working now, not when it expires. Rare, so O(n) is fine."""
        for key in [k for k in self._entries if k[1] == provider]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()
