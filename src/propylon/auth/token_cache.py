"""Verified tokens, remembered until they expire, so a repeated token costs a dict lookup.

Keyed by the canonical ``Authorization`` value, ``Bearer <token>`` (one space, that
spelling of the scheme), and the provider that verified it: a token is served from the
cache only to a route that trusts that provider. A request that spells its header that way
(every client library does) is a hit without even parsing the header. Any other spelling
(``bearer``, extra spaces) is parsed first and then looked up under the canonical key, so
padding a token can never make a second entry, and an entry's key is never larger than its
token.

Bounded twice: by entries and by bytes (an entry costs what its key and claims cost, estimated
from the token's size). When either bound is reached the oldest entries go (insertion order,
O(1) each); a hit does not reorder, which keeps hits cheap, and a token that keeps being used
is simply verified again after eviction. A token larger than ``MAX_ENTRY_BYTES`` is verified
on every request and never kept. Failures are never cached: a JWKS refresh may make a refused
token good a moment later.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from propylon.auth.principal import Principal

CacheEntry = tuple[Principal, float]
"""The principal and the epoch second from which it may no longer be served."""

CANONICAL_SCHEME = b"Bearer "
MAX_ENTRY_BYTES = 8 * 1024
ENTRY_OVERHEAD = 512
"""Bytes an entry costs beyond twice its token (the key, and the decoded claims): a
deliberately generous estimate, so that the budget is an upper bound."""
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


def entry_cost(key: bytes) -> int:
    return 2 * len(key) + ENTRY_OVERHEAD


class TokenCache:
    __slots__ = ("_entries", "bytes", "capacity", "get", "max_bytes")

    def __init__(self, capacity: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if capacity < 0:
            raise ValueError("token cache size must be >= 0")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        """The estimated cost of what is held now (never above ``max_bytes``)."""
        self._entries: OrderedDict[tuple[bytes, str], CacheEntry] = OrderedDict()
        self.get: Callable[[tuple[bytes, str]], CacheEntry | None] = self._entries.get
        """``get((canonical_value, provider))``: the raw entry, for the hot path, which
        compares the deadline itself rather than pay for another call."""

    def __len__(self) -> int:
        return len(self._entries)

    def store(self, token: bytes, principal: Principal, deadline: float) -> None:
        """Remember ``principal`` for ``token`` until ``deadline`` (epoch seconds)."""
        key_value = CANONICAL_SCHEME + token
        cost = entry_cost(key_value)
        if self.capacity == 0 or len(key_value) > MAX_ENTRY_BYTES or cost > self.max_bytes:
            return
        entries = self._entries
        key = (key_value, principal.provider)
        if key in entries:
            del entries[key]  # re-inserted at the young end
            self.bytes -= cost
        while entries and (len(entries) >= self.capacity or self.bytes + cost > self.max_bytes):
            (old_value, _provider), _entry = entries.popitem(last=False)
            self.bytes -= entry_cost(old_value)
        entries[key] = (principal, deadline)
        self.bytes += cost

    def forget_provider(self, provider: str) -> None:
        """Drop every entry ``provider`` verified: its keys changed, and a token signed by a
        withdrawn key must stop working now, not when it expires. Rare, so O(n) is fine."""
        for key in [k for k in self._entries if k[1] == provider]:
            del self._entries[key]
            self.bytes -= entry_cost(key[0])

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
