"""A route's stages, composed once at start-up: the only place that composes them.

For each route the gateway builds a ``RoutePlan`` holding everything a request on that route
needs (its upstream pools in round-robin order, its auth requirement, its timeout, its stats
slot), so that per request the engine only looks things up. ``upstream_head`` is the request
side of the pipeline: it writes the head the downstream service receives.
"""

from __future__ import annotations

from collections.abc import Sequence

from propylon.config.model import AuthRequirement
from propylon.engine.request import Request
from propylon.engine.upstream import UpstreamPool
from propylon.policies.claim_headers import ClaimHeaders
from propylon.policies.forwarding import TrustedProxies
from propylon.routing import CompiledRoute
from propylon.stats import RouteStats


class RoutePlan:
    __slots__ = ("_next", "auth", "claim_headers", "index", "pools", "route", "stats", "timeout")

    def __init__(
        self,
        route: CompiledRoute,
        pools: Sequence[UpstreamPool],
        stats: RouteStats,
    ) -> None:
        self.route = route
        self.index = route.index
        self.pools = tuple(pools)
        self.auth: AuthRequirement | None = route.spec.auth
        self.timeout = route.spec.timeout
        self.claim_headers = ClaimHeaders(route.spec.claim_headers)
        self.stats = stats
        self._next = 0

    def next_pool(self) -> UpstreamPool:
        pools = self.pools
        if len(pools) == 1:
            return pools[0]
        pool = pools[self._next % len(pools)]
        self._next += 1
        return pool


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
        *,
        peer: str,
        identity_lines: list[bytes],
        request_id_line: bytes,
    ) -> bytes:
        # The gateway listens on plain HTTP only, so the scheme the client used is always http.
        lines = [
            request.method + b" " + target + b" HTTP/1.1",
            b"Host: " + pool.host_header,
            *request.kept,
            *identity_lines,
            request_id_line,
            b"X-Forwarded-For: " + self.proxies.forwarded_for(peer, request.forwarded_for),
            b"X-Forwarded-Proto: http",
        ]
        if request.host is not None:
            lines.append(b"X-Forwarded-Host: " + request.host)
        if request.chunked:
            lines.append(b"Transfer-Encoding: chunked")
        elif request.content_length is not None:
            lines.append(b"Content-Length: %d" % request.content_length)
        lines.append(b"\r\n")
        return b"\r\n".join(lines)
