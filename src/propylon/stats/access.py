"""Who may read ``GET /stats`` by address: loopback only unless the config allows more.

The networks are parsed once at start-up; answers are cached per client address because the
same few monitoring hosts ask again and again. The cache is bounded and simply starts over
when full, so a flood of distinct addresses costs memory of at most ``CACHE_SIZE`` entries.
(A bearer token satisfying ``StatsAccess.auth`` is the engine's other way in.)
"""

from __future__ import annotations

import ipaddress

from propylon.config.model import StatsAccess

CACHE_SIZE = 1024

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class StatsGate:
    __slots__ = ("_cache", "_v4", "_v6", "enabled")

    def __init__(self, access: StatsAccess) -> None:
        self.enabled = access.enabled
        networks: list[_Network] = []
        for index, cidr in enumerate(access.allow_cidrs):
            try:
                networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError as exc:
                raise ValueError(f"stats.allow_cidrs[{index}]: {exc}") from None
        self._v4 = tuple(n for n in networks if isinstance(n, ipaddress.IPv4Network))
        self._v6 = tuple(n for n in networks if isinstance(n, ipaddress.IPv6Network))
        self._cache: dict[str, bool] = {}

    def client_allowed(self, client_ip: str) -> bool:
        cached = self._cache.get(client_ip)
        if cached is not None:
            return cached
        allowed = self._decide(client_ip)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[client_ip] = allowed
        return allowed

    def _decide(self, client_ip: str) -> bool:
        if not self.enabled:
            return False
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            # A unix-socket peer or an empty peer name: no address, no access.
            return False
        if isinstance(address, ipaddress.IPv4Address):
            return any(address in network for network in self._v4)
        if any(address in network for network in self._v6):
            return True
        # A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d; judge them as IPv4 too,
        # so "127.0.0.0/8" means the same thing whichever way the socket was opened.
        mapped = address.ipv4_mapped
        return mapped is not None and any(mapped in network for network in self._v4)
