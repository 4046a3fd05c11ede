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
        "per_try_timeout",
        "prepares_tries",
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
        """The largest request body kept for a replay; -1: none (a route that replays
        nothing keeps nothing)."""
        self.per_try_timeout = retry.per_try_timeout if retry is not None else 0.0
        """Seconds a retryable try may wait for its answer's head; 0.0: no per-try limit."""
        self.prepares_tries = self.per_try_timeout > 0.0 or self.replay_limit >= 0
        """Tries of this route may need a per-try deadline or a kept body (one flag read
        per request; False on routes that list no ``retries.methods``)."""
