"""A set of IP addresses, asked "is this client address in it?" on the request path.

One implementation serves every place that judges a client by its address: trusted proxies,
``/stats`` access and the IP allow/block rules (Ocelot's ``SecurityOptions``). An entry is
written in any of the forms Ocelot's IP rules read (its ``IPAddressRange`` library):

- a single address: ``192.168.1.1``, ``2001:db8::1``;
- a network in CIDR form: ``10.0.0.0/8``, ``2001:db8::/32`` (host bits are tolerated here:
  ``10.1.2.3/8`` is ``10.0.0.0/8``; the config readers decide whether that is a mistake);
- an IPv4 network with a mask: ``192.168.1.0/255.255.255.0`` (a contiguous mask only);
- a range: ``192.168.1.10-192.168.1.20``, ``fe80::1-fe80::ff``, or the short IPv4 form
  ``192.168.1.10-20`` (the last octet ends the range).

Entries become sorted, merged ``[first, last]`` integer intervals per family, so a lookup is
one parse and one binary search whatever the number of entries. IPv4-mapped IPv6 addresses
(``::ffff:a.b.c.d``, how a dual-stack socket shows an IPv4 client) are judged as the IPv4
address they carry, and an IPv6 entry that lies inside ``::ffff:0:0/96`` is an IPv4 entry;
so ``127.0.0.0/8`` means the same whichever way the socket was opened, and ``::/0`` does not
quietly admit every IPv4 client.

Answers are remembered per address string (the same few proxies and clients ask again and
again), in a bounded cache that starts over when full, so a flood of distinct addresses
costs at most ``CACHE_SIZE`` entries.
"""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Iterable
from typing import Final

CACHE_SIZE: Final = 1024

V4_MAX: Final = (1 << 32) - 1
V6_MAX: Final = (1 << 128) - 1
MAPPED_FIRST: Final = 0xFFFF << 32
"""``::ffff:0.0.0.0``: the first IPv4-mapped IPv6 address."""
MAPPED_LAST: Final = MAPPED_FIRST | V4_MAX

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


def _address(text: str) -> tuple[int, int] | None:
    """(4 or 6, the address as an integer), or None. Strict: no leading zeros, no scope id,
    no shortened IPv4 (``inet_pton``'s rules)."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    try:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except OSError:
        return None


class AddressRange:
    """One parsed entry: every address from ``first`` to ``last`` of IP version ``version``."""

    __slots__ = ("first", "host_bits", "last", "version")

    def __init__(self, version: int, first: int, last: int, host_bits: bool = False) -> None:
        self.version: Final = version
        self.first: Final = first
        self.last: Final = last
        self.host_bits: Final = host_bits
        """A network written with host bits set (``10.1.2.3/8``): probably a typo."""

    def __str__(self) -> str:
        """The canonical spelling: an address, a network, or ``first-last``."""
        make = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        first, last = make(self.first), make(self.last)
        networks = list(ipaddress.summarize_address_range(first, last))
        if len(networks) == 1:
            return str(networks[0])
        return f"{first}-{last}"


def parse_range(text: str) -> AddressRange:
    """The addresses an entry stands for; ValueError naming the problem otherwise."""
    entry = text.strip()
    if not entry:
        raise ValueError("empty entry")
    if "%" in entry:
        raise ValueError(f"{entry!r}: a zone index (%...) names an interface, not an address")
    if "/" in entry:
        return _network(entry)
    if "-" in entry:
        return _span(entry)
    parsed = _address(entry)
    if parsed is None:
        raise ValueError(f"{entry!r} is not an IP address, network or range")
    return AddressRange(parsed[0], parsed[1], parsed[1])


def _network(entry: str) -> AddressRange:
    base, _, suffix = entry.partition("/")
    parsed = _address(base.strip())
    if parsed is None:
        raise ValueError(f"{entry!r}: {base.strip()!r} is not an IP address")
    version, address = parsed
    bits = 32 if version == 4 else 128
    suffix = suffix.strip()
    if suffix.isdigit() and len(suffix) <= 3:
        prefix = int(suffix)
        if prefix > bits:
            raise ValueError(f"{entry!r}: an IPv{version} prefix is 0-{bits}, got /{prefix}")
    else:
        mask = _address(suffix) if version == 4 else None
        if mask is None or mask[0] != 4:
            raise ValueError(
                f"{entry!r}: after '/' comes a prefix length (0-{bits})"
                + (" or an IPv4 mask such as 255.255.255.0" if version == 4 else "")
            )
        prefix = bin(mask[1]).count("1")
        if mask[1] != (V4_MAX << (32 - prefix)) & V4_MAX:
            raise ValueError(f"{entry!r}: the mask {suffix} is not contiguous")
    full = V4_MAX if version == 4 else V6_MAX
    host_mask = full >> prefix
    first = address & (full ^ host_mask)
    return AddressRange(version, first, first | host_mask, address != first)


def _span(entry: str) -> AddressRange:
    start_text, _, end_text = entry.partition("-")
    start_text, end_text = start_text.strip(), end_text.strip()
    start = _address(start_text)
    if start is None:
        raise ValueError(f"{entry!r}: {start_text!r} is not an IP address")
    version, first = start
    end = _address(end_text)
    if end is not None:
        if end[0] != version:
            raise ValueError(f"{entry!r}: a range cannot mix IPv4 and IPv6")
        last = end[1]
    elif end_text.isdigit() and len(end_text) <= 3 and version == 4:
        octet = int(end_text)
        if octet > 255:
            raise ValueError(f"{entry!r}: the short form ends with an octet (0-255)")
        last = (first & ~0xFF) | octet
    else:
        raise ValueError(
            f"{entry!r}: a range ends with an address, or (IPv4 only) with the last octet, "
            "as in 192.168.1.10-20"
        )
    if last < first:
        raise ValueError(f"{entry!r}: the range ends before it starts")
    return AddressRange(version, first, last)


class CidrError(ValueError):
    """An entry of an address list is not an address, network or range; ``index`` says
    which."""

    def __init__(self, index: int, text: str, reason: str) -> None:
        super().__init__(f"not an IP address, network or range: {text!r} ({reason})")
        self.index = index


def _merged(spans: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sorted, non-overlapping, non-adjacent intervals as (starts, ends)."""
    starts: list[int] = []
    ends: list[int] = []
    for first, last in sorted(spans):
        if ends and first <= ends[-1] + 1:
            if last > ends[-1]:
                ends[-1] = last
        else:
            starts.append(first)
            ends.append(last)
    return tuple(starts), tuple(ends)


def _within(starts: tuple[int, ...], ends: tuple[int, ...], value: int) -> bool:
    index = bisect_right(starts, value) - 1
    return index >= 0 and value <= ends[index]


class CidrSet:
    __slots__ = ("_cache", "_v4_ends", "_v4_starts", "_v6_ends", "_v6_starts", "entries")

    def __init__(self, entries: Iterable[str]) -> None:
        """CidrError when one of ``entries`` is not an address, network or range (host bits
        are tolerated)."""
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        kept: list[str] = []
        for index, text in enumerate(entries):
            try:
                span = parse_range(text)
            except ValueError as exc:
                raise CidrError(index, text, str(exc)) from None
            kept.append(text)
            if span.version == 4:
                v4.append((span.first, span.last))
            elif span.first >= MAPPED_FIRST and span.last <= MAPPED_LAST:
                v4.append((span.first - MAPPED_FIRST, span.last - MAPPED_FIRST))
            else:
                v6.append((span.first, span.last))
        self.entries: Final = tuple(kept)
        self._v4_starts, self._v4_ends = _merged(v4)
        self._v6_starts, self._v6_ends = _merged(v6)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._v4_starts) or bool(self._v6_starts)

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
        if "%" in text:
            # A link-local peer comes with its zone ("fe80::1%eth0"); the address is what
            # the rules judge, so a zone cannot carry it past a block list.
            text = text[: text.index("%")]
        parsed = _address(text)
        if parsed is None:
            return False  # a unix-socket peer, an empty peer name: no address, no match
        version, value = parsed
        if version == 4:
            return _within(self._v4_starts, self._v4_ends, value)
        if MAPPED_FIRST <= value <= MAPPED_LAST:
            return _within(self._v4_starts, self._v4_ends, value - MAPPED_FIRST)
        return _within(self._v6_starts, self._v6_ends, value)
