"""Which request and response headers cross the gateway, and the X-Forwarded-* headers.

Hop-by-hop headers (RFC 9110 s.7.6.1) describe one connection, not the message, so they are
dropped in both directions, together with every header the sender named in ``Connection``.
Framing headers (``Content-Length``, ``Transfer-Encoding``) are dropped too because the gateway
re-frames every message it forwards instead of trusting the sender's framing: that is what
closes the CL/TE request-smuggling family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from propylon.http.cidr import CidrSet, parse_address

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
    b"x-forwarded-port",
    b"x-real-ip",
    b"forwarded",
    # W3C trace context: the gateway is a hop, so it sends its own (tracing/context.py).
    b"traceparent",
    b"tracestate",
}

# Forwarding facts a trusted proxy in front of the gateway may state; from anyone else the
# gateway states them itself.
FORWARDED_FACTS: frozenset[bytes] = frozenset(
    {b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port"}
)

RESPONSE_REWRITTEN: Final[frozenset[bytes]] = HOP_BY_HOP | {b"content-length"}


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
    """Who the client is, and whether an incoming ``X-Forwarded-*`` may be believed.

    From an untrusted peer the chain is replaced by the peer address: otherwise any client
    could claim to be anyone to the services behind the gateway.
    """

    __slots__ = ("_set",)

    def __init__(self, cidrs: Sequence[str]) -> None:
        self._set = CidrSet(cidrs)

    def trusts(self, peer: str) -> bool:
        return bool(self._set) and peer in self._set

    def forwarded_for(self, peer: str, incoming: Sequence[bytes]) -> bytes:
        if incoming and self.trusts(peer):
            return b", ".join(v.strip() for v in incoming) + b", " + peer.encode("ascii")
        return peer.encode("ascii")

    def client_address(self, peer: str, incoming: Sequence[bytes]) -> str:
        """The client's address: the peer, or, when the peer is a trusted proxy, the
        right-most address of ``X-Forwarded-For`` that is not itself a trusted proxy (the
        left-most when all are). An entry that is not an address ends the walk: whoever
        wrote it is the client we can vouch for."""
        if not incoming or not self.trusts(peer):
            return peer
        client = peer
        hops = [hop.strip() for value in incoming for hop in value.split(b",")]
        for hop in reversed(hops):
            if client not in self._set:
                break
            address = parse_address(hop.decode("latin-1"))
            if address is None:
                break
            client = str(address)
        return client
