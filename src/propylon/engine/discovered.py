"""The gateway's discovered hosts: one pool per address of each discovered name, and the
routes whose host sets follow them.

A route with ``discovery`` lists names (``profiles:8000``) that ``upstream/discovery.py``
resolves in the background. Each ``(scheme, name, port)`` has one pool per current address,
shared by every route that lists it, with the first such route's ejection and health-check
policies (as for fixed hosts). When a name's addresses change:

- an address that stays keeps its pool, and so its idle connections and its health;
- a new address gets a pool (and its active check, if the route has one);
- a removed address's pool is closed: its idle connections at once, a connection in use
  when its exchange ends (a request in flight on it finishes);
- each route listing the name gets a new selector over its new pools, built aside and
  swapped in one assignment on the loop (``Selector.adopt`` carries the in-flight counts).

Routes without discovery are never touched here and pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from propylon.config.model import (
    DownstreamHost,
    EjectionSpec,
    GatewayConfig,
    HealthCheckSpec,
    RouteSpec,
)
from propylon.engine.route_plan import RoutePlan
from propylon.stats import GatewayStats, UpstreamStats
from propylon.upstream.checker import HealthChecker
from propylon.upstream.discovery import Discovery, is_address
from propylon.upstream.pool import UpstreamPool, sized_pool
from propylon.upstream.selector import Selector, Tables, selector_for

Key = tuple[str, str, int]
"""(scheme, name, port)."""


class DiscoveryFailed(Exception):
    """Start-up: some route has no address at all (every name of it failed, no fixed host)."""


def discovered(spec: RouteSpec, host: DownstreamHost) -> bool:
    """Whether ``host`` of route ``spec`` is resolved by discovery (a name, not an address)."""
    return spec.discovery is not None and not is_address(host.host)


class DiscoveredHosts:
    def __init__(
        self,
        config: GatewayConfig,
        stats: GatewayStats,
        checker: HealthChecker,
        tables: Tables,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.stats = stats
        self.checker = checker
        self.tables = tables
        self.clock = clock
        names: dict[str, float] = {}
        self.policies: dict[Key, tuple[EjectionSpec | None, HealthCheckSpec | None]] = {}
        for spec in config.routes:
            for host in spec.downstream_hosts:
                if discovered(spec, host):
                    assert spec.discovery is not None
                    name = host.host.lower()
                    # One task per name: the route that asks most often sets its pace.
                    names[name] = min(names.get(name, spec.discovery), spec.discovery)
                    self.policies.setdefault(
                        (spec.downstream_scheme, name, host.port),
                        (spec.ejection, spec.health_check),
                    )
        self.sets: dict[Key, dict[str, UpstreamPool]] = {key: {} for key in self.policies}
        self.plans: list[RoutePlan] = []
        self.fixed: Mapping[Key, UpstreamPool] = {}
        self.discovery = Discovery(names, config.dns, self._changed)

    def __bool__(self) -> bool:
        return bool(self.policies)

    # -- building -------------------------------------------------------------------------------
    def selector(self, spec: RouteSpec, fixed: Mapping[Key, UpstreamPool]) -> Selector:
        """``spec``'s selector over its fixed hosts' pools and its names' current addresses."""
        pools: list[UpstreamPool] = []
        weights: list[int] = []
        given = spec.balancer.weights
        for i, host in enumerate(spec.downstream_hosts):
            if discovered(spec, host):
                key = (spec.downstream_scheme, host.host.lower(), host.port)
                chosen = list(self.sets[key].values())
            else:
                chosen = [fixed[(spec.downstream_scheme, host.host, host.port)]]
            pools.extend(chosen)
            # Every address of a name weighs what the name was given.
            weights.extend([given[i] if given else 1] * len(chosen))
        balancer = replace(spec.balancer, weights=tuple(weights)) if given else spec.balancer
        return selector_for(balancer, pools, self.clock, self.tables)

    def attach(self, plans: list[RoutePlan], fixed: Mapping[Key, UpstreamPool]) -> None:
        """The routes that follow discovered names (their selectors are swapped here)."""
        self.fixed = fixed
        self.plans = [
            plan
            for plan in plans
            if any(discovered(plan.route.spec, h) for h in plan.route.spec.downstream_hosts)
        ]

    # -- life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Resolve every name before the worker listens, then keep them resolved.
        DiscoveryFailed when a route would have no host at all."""
        if not self:
            return
        await self.discovery.resolve_all()
        problems: list[str] = []
        for plan in self.plans:
            if plan.selector.pools:
                continue
            spec = plan.route.spec
            why = "; ".join(
                f"{host}: {self.discovery.states[host.host.lower()].last_error}"
                for host in spec.downstream_hosts
                if discovered(spec, host)
            )
            problems.append(f"{spec.source} ({spec.label}) has no address to send to: {why}")
        if problems:
            raise DiscoveryFailed("; ".join(problems))
        self.discovery.start()

    async def close(self) -> None:
        await self.discovery.close()
        for pools in self.sets.values():
            for pool in pools.values():
                pool.close()

    def snapshot(self) -> dict[str, Any]:
        return self.discovery.snapshot()

    # -- a name's addresses changed ---------------------------------------------------------------
    def _changed(self, name: str, addresses: tuple[str, ...]) -> None:
        limits = self.config.limits
        loop_clock = self.clock
        for key, pools in self.sets.items():
            if key[1] != name:
                continue
            scheme, _name, port = key
            ejection, check = self.policies[key]
            kept: dict[str, UpstreamPool] = {}
            for address in addresses:
                pool = pools.get(address)
                if pool is None:
                    label = f"{name}:{port}@{address}"
                    stats = self.stats.upstreams.setdefault(label, UpstreamStats())
                    pool = sized_pool(
                        scheme, name, port, limits, stats, loop_clock, address=address
                    )
                    if ejection is not None:
                        pool.health.apply(ejection)
                    if check is not None:
                        self.checker.add(pool, check)
                kept[address] = pool
            for address, pool in pools.items():
                if address not in kept:
                    # Drains: idle connections close now, one in use when its exchange ends.
                    pool.close()
                    self.checker.remove(pool)
                    self.stats.upstreams.pop(pool.key, None)
            self.sets[key] = kept
        for plan in self.plans:
            spec = plan.route.spec
            if not any(
                discovered(spec, h) and h.host.lower() == name for h in spec.downstream_hosts
            ):
                continue
            new = self.selector(spec, self.fixed)
            new.adopt(plan.selector)
            # No await between these: a request sees the old selector or the new one.
            plan.selector = new
            plan.tracking = new.tracking
