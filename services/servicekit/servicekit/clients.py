"""The client's address: the TCP peer, or what a trusted proxy (the gateway) says it is.

The gateway appends the address it saw to `X-Forwarded-For` (and replaces the header from
clients it does not trust), so the right-most entry is its view of the client. Entries are
believed only when the peer itself is a trusted proxy; walking from the right, trusted
proxies are skipped, and the first other address is the client. Anything unparsable stops
the walk at the last address known to be good, so a forged header can claim nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

from servicekit.environment import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"


def _parse(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    def __init__(self, trusted_proxies: Sequence[Network]) -> None:
        self.trusted_proxies = tuple(trusted_proxies)

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted_proxies)

    def of(self, request: Request) -> str:
        peer = _parse(request.client.host) if request.client else None
        if peer is None:
            return UNKNOWN
        current = peer
        if not self._trusted(current):
            return str(current)
        chain = [
            part
            for value in request.headers.getlist("x-forwarded-for")
            for part in value.split(",")
        ]
        for entry in reversed(chain):
            hop = _parse(entry)
            if hop is None:
                break
            current = hop
            if not self._trusted(current):
                break
        return str(current)
