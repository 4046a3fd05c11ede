"""A set of IP networks, asked "is this client address in it?" on the request path.

One implementation serves every place that judges a client by its address: trusted proxies,
``/stats`` access and the IP allow/block rules. Networks are parsed once; answers are
remembered per address string (the same few proxies and monitoring hosts ask again and
again), in a bounded cache that starts over when full, so a flood of distinct addresses
costs at most ``CACHE_SIZE`` entries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

CACHE_SIZE = 1024

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """The address in ``text`` (IPv4-mapped IPv6 shown as IPv4), or None if it is not one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d; judge them as IPv4,
        # so "127.0.0.0/8" means the same whichever way the socket was opened.
        return address.ipv4_mapped
    return address


class CidrError(ValueError):
    """An entry of a CIDR list is not a network; ``index`` says which."""

    def __init__(self, index: int, text: str, reason: str) -> None:
        super().__init__(f"not an IP network: {text!r} ({reason})")
        self.index = index


class CidrSet:
    __slots__ = ("_cache", "_v4", "_v6", "networks")

    def __init__(self, cidrs: Iterable[str]) -> None:
        """CidrError when one of ``cidrs`` is not a network (host bits are tolerated)."""
        networks: list[Network] = []
        for index, cidr in enumerate(cidrs):
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise CidrError(index, cidr, str(exc)) from None
        self.networks = tuple(networks)
        self._v4 = tuple(n for n in networks if isinstance(n, ipaddress.IPv4Network))
        self._v6 = tuple(n for n in networks if isinstance(n, ipaddress.IPv6Network))
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: str) -> bool:
        cached = self._cache.get(address)
        if cached is not None:
            return cached
        found = self._lookup(address)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[address] = found
        return found

    def _lookup(self, text: str) -> bool:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False  # a unix-socket peer, an empty peer name: no address, no match
        if isinstance(address, ipaddress.IPv4Address):
            return any(address in network for network in self._v4)
        if any(address in network for network in self._v6):
            return True
        mapped = address.ipv4_mapped
        return mapped is not None and any(mapped in network for network in self._v4)
