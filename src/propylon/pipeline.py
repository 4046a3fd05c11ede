"""A route's stages, composed once at start-up: the only place that composes them.

For each route the gateway builds a ``RoutePlan`` holding everything a request on that route
needs (its upstream pools in round-robin order, its auth requirement, its timeout, its stats
slot), so that per request the engine only looks things up. ``upstream_head`` is the request
side of the pipeline: it writes the head the downstream service receives.
"""

from __future__ import annotations

from collections.abc import Sequence

from propylon.config.model import AuthRequirement, ClaimHeader
from propylon.http.request import Request
from propylon.engine.upstream import UpstreamPool
from propylon.policies.claim_headers import ClaimHeaders
from propylon.policies.forwarding import TrustedProxies
from propylon.routing import CompiledRoute
from propylon.stats import RouteStats


class RoutePlan:
    __slots__ = (
        "_next",
        "allow_underscores",
        "auth",
        "claim_headers",
        "identity_claim",
        "index",
        "pools",
        "route",
        "stats",
        "timeout",
    )

    def __init__(
        self,
        route: CompiledRoute,
        pools: Sequence[UpstreamPool],
        stats: RouteStats,
        *,
        allow_underscores: bool = False,
    ) -> None:
        self.route = route
        self.index = route.index
        self.pools = tuple(pools)
        self.auth: AuthRequirement | None = route.spec.auth
        self.timeout = route.spec.timeout
        self.claim_headers = ClaimHeaders(route.spec.claim_headers)
        self.identity_claim: ClaimHeader | None = route.spec.identity_claim
        self.stats = stats
        self.allow_underscores = (
            allow_underscores
            if route.spec.allow_underscores is None
            else route.spec.allow_underscores
        )
        self._next = 0

    def next_pool(self) -> UpstreamPool:
        pools = self.pools
        if len(pools) == 1:
            return pools[0]
        pool = pools[self._next % len(pools)]
        self._next += 1
        return pool


def forwarding_lines(peer: str, port: int, scheme: bytes = b"http") -> bytes:
    """What the gateway states about a client connection, when no trusted proxy spoke for
    it: computed once per connection, sent with each of its requests. ``scheme`` is how the
    client reached the listener (``https`` on the TLS listener)."""
    address = peer.encode("ascii")
    return (
        b"X-Forwarded-For: %s\r\nX-Real-IP: %s\r\nX-Forwarded-Proto: %s\r\n"
        b"X-Forwarded-Port: %d" % (address, address, scheme, port)
    )


class HeadComposer:
    """Writes upstream request heads: kept headers + identity + forwarding + framing."""

    __slots__ = ("proxies",)

    def __init__(self, proxies: TrustedProxies) -> None:
        self.proxies = proxies

    def upstream_head(
        self,
        request: Request,
        target: bytes,
        pool: UpstreamPool,
        plan: RoutePlan,
        *,
        peer: str,
        local_port: int,
        scheme: bytes,
        connection_lines: bytes,
        identity_lines: list[bytes],
        request_id_line: bytes,
    ) -> bytes:
        lines = [
            request.method + b" " + target + b" HTTP/1.1",
            b"Host: " + pool.host_header,
            *request.kept,
        ]
        if request.underscored is not None and plan.allow_underscores:
            lines.extend(request.underscored)
        lines.extend(identity_lines)
        lines.append(request_id_line)
        if (request.forwarded_for or request.forwarded_facts) and self.proxies.trusts(peer):
            self._trusted_forwarding(lines, request, peer, local_port, scheme)
        else:
            lines.append(connection_lines)
            if request.host is not None:
                lines.append(b"X-Forwarded-Host: " + request.host)
        if request.chunked:
            lines.append(b"Transfer-Encoding: chunked")
        elif request.content_length is not None:
            lines.append(b"Content-Length: %d" % request.content_length)
        lines.append(b"\r\n")
        return b"\r\n".join(lines)

    def _trusted_forwarding(
        self, lines: list[bytes], request: Request, peer: str, local_port: int, scheme: bytes
    ) -> None:
        """A trusted proxy spoke for the client: extend its chain, keep what it stated about
        the original request (scheme, host, port), and fill in what it did not say."""
        proxies = self.proxies
        lines.append(b"X-Forwarded-For: " + proxies.forwarded_for(peer, request.forwarded_for))
        client = proxies.client_address(peer, request.forwarded_for)
        lines.append(b"X-Real-IP: " + client.encode("ascii"))
        stated: dict[bytes, bytes] = {}
        for line in request.forwarded_facts or ():
            name, _, value = line.partition(b":")
            stated.setdefault(name.strip().lower(), value.strip())
        ours: dict[bytes, bytes | None] = {
            b"x-forwarded-proto": scheme,
            b"x-forwarded-host": request.host,
            b"x-forwarded-port": b"%d" % local_port,
        }
        for lower, name in _FACT_NAMES:
            fact = stated.get(lower, ours[lower])
            if fact is not None:
                lines.append(name + b": " + fact)


_FACT_NAMES = (
    (b"x-forwarded-proto", b"X-Forwarded-Proto"),
    (b"x-forwarded-host", b"X-Forwarded-Host"),
    (b"x-forwarded-port", b"X-Forwarded-Port"),
)
