"""One config version as a worker serves it, built whole and swapped in by one assignment.

A ``Generation`` holds everything the request path reads that comes from the config: the
router and each route's plan (chain, selector, stats slot), the header rules, the trusted
proxies, the authenticator, the site the stages share (state store, breakers, plugins,
signer) and the health checker. ``Gateway.reload`` builds the next one off to the side while
this one serves, starts it, and makes it current in one synchronous step: a request is
matched against exactly one generation, and everything after routing reaches its plan
through the chain's ``PlanEnding`` rather than through "the current table", so a request in
flight finishes on the chain it started with, even across a swap.

What outlives a generation is the gateway's: listeners, client connections, upstream pools
(by scheme, host and port, with their health), the stats objects of routes that did not move,
the sticky-session tables. What a successor shares (an unchanged authenticator, state store,
breaker, selector) is handed over, not closed: ``close(successor)`` closes only the rest.
"""

from __future__ import annotations

from mypy_extensions import trait

from propylon.auth import Authenticator
from propylon.config.model import GatewayConfig
from propylon.engine.client_limits import ClientLimits
from propylon.engine.discovered import DiscoveredHosts
from propylon.engine.exchange import ExchangeContext
from propylon.engine.responder import Responder
from propylon.engine.route_plan import RoutePlan
from propylon.http.request import HeaderRules
from propylon.plane.build import Site
from propylon.plane.chain import Ending
from propylon.plane.stage import Flow, RequestStage
from propylon.policies.forwarding import TrustedProxies
from propylon.policies.identity import IdentityHeader
from propylon.policies.request_id import RequestIdPolicy
from propylon.routing import Router
from propylon.stats import StatsGate
from propylon.upstream.checker import HealthChecker
from propylon.upstream.head import HeadComposer


@trait
class Terminal:
    """Where a plan's flows end: the gateway (the proxy terminal and the responder)."""

    def forward_on(self, flow: Flow, plan: RoutePlan, generation: Generation) -> None:
        raise NotImplementedError

    def respond_on(self, flow: Flow, plan: RoutePlan) -> None:
        raise NotImplementedError


class PlanEnding(Ending):
    """One route's ``Ending``: it knows its plan and generation, so a flow resumed after a
    reload still ends on them."""

    __slots__ = ("generation", "plan", "terminal")

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.plan: RoutePlan | None = None
        self.generation: Generation | None = None

    def forward(self, flow: Flow) -> None:
        plan = self.plan
        generation = self.generation
        assert plan is not None and generation is not None
        self.terminal.forward_on(flow, plan, generation)

    def respond(self, flow: Flow) -> None:
        plan = self.plan
        assert plan is not None
        self.terminal.respond_on(flow, plan)


class Generation:
    def __init__(
        self,
        config: GatewayConfig,
        digest: str,
        router: Router,
        site: Site,
        authenticator: Authenticator,
        checker: HealthChecker,
        exchange_context: ExchangeContext,
    ) -> None:
        self.config = config
        self.digest = digest
        """The config text's sha256 ("" for a config built in code, as tests do)."""
        self.router = router
        self.site = site
        self.authenticator = authenticator
        self.checker = checker
        self.exchange_context = exchange_context
        self.identity: IdentityHeader = site.identity
        self.request_id = RequestIdPolicy(config.request_id_header)
        self.responder = Responder(self.request_id)
        self.client_limits = ClientLimits(config.limits)
        self.proxies = TrustedProxies(config.trusted_proxies)
        self.composer = HeadComposer(self.proxies)
        self.stats_gate = StatsGate(config.stats)
        self.stats_path = config.stats.path if config.stats.enabled else None
        self.host_sensitive = any(spec.upstream_host for spec in config.routes)
        self.allow_double_encoding = config.forwarding.allow_double_encoding
        self.header_rules: HeaderRules | None = None
        self.discovered: DiscoveredHosts | None = None
        """The routes' discovered names (None: no route has any)."""
        self.plans: list[RoutePlan] = []
        self.stages: list[RequestStage] = []

    async def start(self, previous: Generation | None) -> None:
        """Open what this generation does not share with ``previous`` (which still serves)."""
        if previous is None or previous.authenticator is not self.authenticator:
            await self.authenticator.start()
        await self.site.start()
        for stage in self.stages:
            await stage.start()
        self.checker.start()
        if self.discovered is not None:
            # Before it serves: a discovered route has its addresses before its first
            # request (DiscoveryFailed when one has none at all).
            await self.discovered.start()

    async def stop_discovery(self) -> None:
        """Stop following names (a successor does now); pools stay until ``close``."""
        if self.discovered is not None:
            await self.discovered.discovery.close()

    async def close(self, successor: Generation | None = None) -> None:
        """Close what ``successor`` does not carry on."""
        await self.checker.close()
        if self.discovered is not None:
            await self.discovered.close()  # its address pools drain: in-flight ones finish
        if successor is None or successor.authenticator is not self.authenticator:
            await self.authenticator.close()
        for stage in self.stages:
            await stage.close()
        await self.site.close(None if successor is None else successor.site)
