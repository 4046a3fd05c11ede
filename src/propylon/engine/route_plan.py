"""What one route needs per request, looked up, never computed: built once at start-up.

A ``RoutePlan`` holds the route's chain (its request stages and where they end), the
selector that picks one of its upstream pools, its timeout and its stats slot.
"""

from __future__ import annotations

from propylon.plane.chain import Chain
from propylon.routing import CompiledRoute
from propylon.stats import RouteStats
from propylon.upstream.retry import RetryPolicy
from propylon.upstream.selector import Selector


class RoutePlan:
    __slots__ = (
        "allow_underscores",
        "chain",
        "index",
        "replay_limit",
        "retry",
        "route",
        "selector",
        "stats",
        "timeout",
        "tracking",
    )

    def __init__(
        self,
        route: CompiledRoute,
        selector: Selector,
        stats: RouteStats,
        chain: Chain,
        *,
        allow_underscores: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.route = route
        self.index = route.index
        self.chain = chain
        self.timeout = route.spec.timeout
        self.stats = stats
        self.allow_underscores = (
            allow_underscores
            if route.spec.allow_underscores is None
            else route.spec.allow_underscores
        )
        self.selector = selector
        self.tracking = selector.tracking
        """The selector counts in-flight requests: each exchange's end releases its host."""
        self.retry = retry
        """When a failed try goes again (None: never)."""
        self.replay_limit = retry.replay_limit if retry is not None else -1
        """The largest request body kept for a replay; -1: none (read on every request
        with a body, so a route that replays nothing keeps nothing)."""
