"""Config -> each route's request stages: the stage registry, and the one fixed order.

Every request stage of every route is chosen here, once per worker at start-up and again on
each reload (a new ``Site`` that takes over from the previous one what did not change). A
feature a route does not configure adds nothing to its tuple, so a plain proxied route runs
no stage at all. The order is fixed by phase, the same for every route:

1. ``ip_filter``   client address allowed / blocked (403)                 before anything
2. ``cors``        preflight answered; response headers for the origin    before auth
3. ``rate_limit``  Ocelot ``RateLimitOptions`` (keyed by a client header)  before auth, as
                                                                          in Ocelot
4. ``authenticate`` bearer token -> principal (401); may wait for JWKS keys; an ``OPTIONS``
                   request skips 4, 5 and 7 on a route with ``anonymous_options``
5. ``authorize``   scopes, claims (403)
6. ``rate_limit``  native limits (may be keyed by the verified identity)   after auth
7. ``identify``    identity header, claim headers
8. ``plugins``     user stages, in the order the route lists them
9. ``assertion``   the signed gateway assertion (it signs what the stages decided)
10. ``circuit_breaker`` open: 503 ``CircuitOpen``; half-open: one probe (last: only
                   requests about to go upstream are gated or probe)

Response stages: ``cors`` (drops the upstream's own CORS fields), then the circuit breaker's
tally of every outcome.

Stages never see each other; they meet only on the flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from propylon.auth import Authenticator
from propylon.auth.assertion import ASSERTION_HEADER_LOWER, AssertionSigner, signer_for
from propylon.config.model import BreakerSpec, GatewayConfig, RouteSpec
from propylon.config.plugin_specs import plugin_class
from propylon.plane.stage import RequestStage, ResponseStage
from propylon.plugins import Plugin
from propylon.policies.circuit_breaker import CircuitBreaker
from propylon.policies.claim_headers import ClaimHeaders, stripped_names
from propylon.policies.cors import CorsRules
from propylon.policies.identity import IdentityHeader
from propylon.policies.ip_rules import IpPolicy
from propylon.stages.assertion import SignAssertion
from propylon.stages.authn import Authenticate, Authorize, Identify
from propylon.stages.breaker import BreakerGate, BreakerTally
from propylon.stages.cors import Cors, UpstreamCorsFields
from propylon.stages.ip_filter import IpFilter
from propylon.stages.plugin import PluginStage
from propylon.stages.rate_limit import NativeLimiter, OcelotLimiter
from propylon.state import StateStore, open_store
from propylon.stats.counters import RateLimitDecisions
from propylon.tracing.context import TRACE_HEADERS


class Site:
    """What one worker's stages share: built once per worker and config, before its chains.

    Built for a reload, it takes over from ``previous`` what the new config leaves as it
    was, so their state carries on: the state store (rate-limit counters) when the
    ``state`` settings are unchanged, and each circuit breaker whose route (methods, host,
    template) keeps the same breaker settings. Plugins are created afresh with their new
    settings. ``close(successor)`` closes only what the successor did not take over.
    """

    def __init__(
        self,
        config: GatewayConfig,
        authenticator: Authenticator,
        identity: IdentityHeader,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        *,
        worker_id: int = 0,
        workers: int = 1,
        run_dir: str | None = None,
        previous: Site | None = None,
    ) -> None:
        self.config = config
        self.authenticator = authenticator
        self.identity = identity
        self.spawn = spawn
        self.worker_id = worker_id
        self.workers = workers
        self.run_dir = run_dir
        self.loop = asyncio.get_running_loop()
        self._plugins: dict[str, Plugin] = {}
        self._state: StateStore | None = None
        self._signer: AssertionSigner | None = None
        self._breakers: dict[str, CircuitBreaker] = {}
        self._inherited: dict[str, tuple[BreakerSpec | None, CircuitBreaker]] = {}
        """The previous site's breakers, by route key, with the settings they were built for."""
        if previous is not None:
            if previous._state is not None and previous.config.state == config.state:
                self._state = previous._state
            for spec in previous.config.routes:
                breaker = previous._breakers.get(spec.source)
                if breaker is not None:
                    self._inherited[spec.counter_key] = (spec.breaker, breaker)
        self._decisions: dict[str, RateLimitDecisions] = {}
        self.gateway_owned = frozenset(
            {
                config.identity_header.lower(),
                config.request_id_header.lower(),
                ASSERTION_HEADER_LOWER.decode("ascii"),
            }
            | {n.decode("ascii") for n in stripped_names(config.routes)}
            | {n.decode("ascii") for n in TRACE_HEADERS}
        )
        """Header names only the gateway sets upstream (identity, request id, the signed
        assertion, claim headers, trace context): no plugin may add them."""

    def plugin_stage(self, name: str, route_label: str) -> PluginStage:
        """A route's stage for plugin ``name``: one plugin instance per definition and
        worker, shared by every route that lists it."""
        plugin = self._plugins.get(name)
        if plugin is None:
            spec = next(p for p in self.config.plugins if p.name == name)
            plugin = plugin_class(spec.use)(dict(spec.settings))
            self._plugins[name] = plugin
        return PluginStage(name, plugin, route_label, self.gateway_owned)

    async def start(self) -> None:
        for plugin in self._plugins.values():
            await plugin.start()

    async def close(self, successor: Site | None = None) -> None:
        for plugin in self._plugins.values():
            await plugin.close()
        if self._state is not None and (successor is None or successor._state is not self._state):
            # The one store every limited route of this worker shares: closed once, here.
            await self._state.close()

    @property
    def state(self) -> StateStore:
        """The worker's state store (rate-limit counters), opened when a route first needs
        it: a config without rate limits maps no table and opens no Redis connection."""
        store = self._state
        if store is None:
            store = self._state = open_store(
                self.config.state, workers=self.workers, run_dir=self.run_dir
            )
        return store

    def breaker(self, spec: RouteSpec) -> CircuitBreaker:
        """The route's one circuit breaker, shared by its gate and its tally."""
        breaker = self._breakers.get(spec.source)
        if breaker is None:
            assert spec.breaker is not None
            inherited = self._inherited.get(spec.counter_key)
            if inherited is not None and inherited[0] == spec.breaker:
                breaker = inherited[1]
            else:
                breaker = CircuitBreaker(spec.breaker)
            self._breakers[spec.source] = breaker
        return breaker

    def decisions(self, spec: RouteSpec) -> RateLimitDecisions:
        """The route's rate-limit decision counters, shared by its limiters."""
        decisions = self._decisions.get(spec.source)
        if decisions is None:
            decisions = self._decisions[spec.source] = RateLimitDecisions()
        return decisions

    def route_counters(
        self, spec: RouteSpec
    ) -> tuple[RateLimitDecisions | None, CircuitBreaker | None]:
        """What the route's stages count, for its stats (None: it has no such stage)."""
        return self._decisions.get(spec.source), self._breakers.get(spec.source)

    def assertion_signer(self) -> AssertionSigner:
        """The worker's one signer (one memo for all routes), built when a route needs it."""
        signer = self._signer
        if signer is None:
            settings = self.config.assertion
            if settings is None:
                raise ValueError("a route signs assertions but the config has no key")
            signer = signer_for(settings)
            self._signer = signer
        return signer


def route_stages(spec: RouteSpec, site: Site) -> tuple[RequestStage, ...]:
    """The request stages of one route, in phase order (see the module docstring)."""
    stages: list[RequestStage] = []
    if spec.ip_rules:
        stages.append(IpFilter(IpPolicy(spec.ip_rules)))
    if spec.cors is not None:
        stages.append(Cors(CorsRules(spec.cors)))
    if spec.ocelot_rate_limit is not None:
        stages.append(OcelotLimiter(spec.ocelot_rate_limit, spec, site.state, site.decisions(spec)))
    auth = spec.auth
    options = spec.anonymous_options
    if auth is not None:
        stages.append(Authenticate(site.authenticator, auth, anonymous_options=options))
        if auth.allowed_scopes or auth.required_claims:
            stages.append(Authorize(auth, anonymous_options=options))
    if spec.rate_limits:
        stages.append(NativeLimiter(spec.rate_limits, spec, site.state, site.decisions(spec)))
    if auth is not None:
        stages.append(
            Identify(
                site.identity,
                spec.identity_claim,
                ClaimHeaders(spec.claim_headers),
                anonymous_options=options,
            )
        )
    for name in spec.plugins:
        stages.append(site.plugin_stage(name, spec.label))
    if spec.assertion_audience is not None:
        stages.append(
            SignAssertion(site.assertion_signer(), spec.assertion_audience, spec.identity_claim)
        )
    if spec.breaker is not None:
        stages.append(BreakerGate(site.breaker(spec), site.loop.time))
    return tuple(stages)


def route_response_stages(spec: RouteSpec, site: Site) -> tuple[ResponseStage, ...]:
    """The response stages of one route (see ``plane/stage.py``); none for most routes."""
    stages: list[ResponseStage] = []
    if spec.cors is not None:
        stages.append(UpstreamCorsFields())
    if spec.breaker is not None:
        stages.append(BreakerTally(site.breaker(spec), site.loop.time))
    return tuple(stages)
