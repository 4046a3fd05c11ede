"""What one route needs per request, looked up, never computed: built once at start-up.

A ``RoutePlan`` holds the route's chain (its request stages and where they end), its
upstream pools in round-robin order, its timeout and its stats slot.
"""

from __future__ import annotations

from collections.abc import Sequence

from propylon.plane.chain import Chain
from propylon.routing import CompiledRoute
from propylon.stats import RouteStats
from propylon.upstream.pool import UpstreamPool


class RoutePlan:
    __slots__ = (
        "_next",
        "allow_underscores",
        "chain",
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
        chain: Chain,
        *,
        allow_underscores: bool = False,
    ) -> None:
        self.route = route
        self.index = route.index
        self.pools = tuple(pools)
        self.chain = chain
        self.timeout = route.spec.timeout
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
