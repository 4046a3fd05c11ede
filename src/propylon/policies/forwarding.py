"""Which request and response headers cross the gateway, and the X-Forwarded-* headers.

Hop-by-hop headers (RFC 9110 s.7.6.1) describe one connection, not the message, so they are
dropped in both directions, together with every header the sender named in ``Connection``.
Framing headers (``Content-Length``, ``Transfer-Encoding``) are dropped too because the gateway
re-frames every message it forwards instead of trusting the sender's framing: that is what
closes the CL/TE request-smuggling family.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Request headers the gateway always writes itself (or deliberately withholds) upstream.
REQUEST_REWRITTEN: frozenset[bytes] = HOP_BY_HOP | {
    b"content-length",
    b"host",
    b"expect",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"forwarded",
}

RESPONSE_REWRITTEN: frozenset[bytes] = HOP_BY_HOP | {b"content-length"}


def connection_tokens(values: Sequence[bytes]) -> frozenset[bytes]:
    """Header names listed in ``Connection`` headers (lower-case), minus the framing keywords."""
    names: set[bytes] = set()
    for value in values:
        for token in value.split(b","):
            token = token.strip().lower()
            if token and token not in (b"close", b"keep-alive"):
                names.add(token)
    return frozenset(names)


class TrustedProxies:
    """Decides whether an incoming ``X-Forwarded-For`` may be extended or must be replaced.

    From an untrusted peer the chain is replaced by the peer address: otherwise any client
    could claim to be anyone to the services behind the gateway.
    """

    __slots__ = ("_is_trusted", "_networks")

    def __init__(self, cidrs: Sequence[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)

        @lru_cache(maxsize=1024)
        def is_trusted(address: str) -> bool:
            if not self._networks:
                return False
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                return False
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            return any(ip in net for net in self._networks)

        self._is_trusted = is_trusted

    def forwarded_for(self, peer: str, incoming: Sequence[bytes]) -> bytes:
        if incoming and self._is_trusted(peer):
            return b", ".join(v.strip() for v in incoming) + b", " + peer.encode("ascii")
        return peer.encode("ascii")
