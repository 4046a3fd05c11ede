"""One worker's gateway: its listeners and connections, the config's current generation
(``engine/generation.py``: built at start-up, rebuilt and swapped on each reload), and the
per-request decision.

``decide`` is the request path up to the route: target form -> canonical path -> ``/stats``
-> route (remembered per method, target and host). From there the route's chain runs its
stages (``plane/chain.py``); the gateway is where chains end: ``forward`` (the proxy terminal)
and ``respond`` (a stage's answer). Nothing reaches an upstream before every stage continued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, cast

import httptools
import orjson

from propylon import errors
from propylon.auth import Authenticator, AuthFailure, authorize
from propylon.auth.assertion import ASSERTION_HEADER_LOWER
from propylon.config.model import GatewayConfig, HealthCheckSpec
from propylon.engine.discovered import DiscoveredHosts, discovered
from propylon.engine.exchange import AccessSink, Exchange, ExchangeContext
from propylon.engine.fault_log import FaultLog
from propylon.engine.generation import Generation, PlanEnding, Terminal
from propylon.engine.listeners import TlsListener
from propylon.engine.route_plan import RoutePlan
from propylon.engine.server import ClientConnection, Handler
from propylon.engine.watchdog import Watchdog
from propylon.http.host import HostRejected
from propylon.http.request import HeaderRules, Request
from propylon.paths import PathRejected, canonicalise
from propylon.plane.build import Site, route_response_stages, route_stages
from propylon.plane.chain import Chain
from propylon.plane.stage import Flow
from propylon.policies.claim_headers import stripped_names
from propylon.policies.forwarding import TrustedProxies
from propylon.policies.identity import IdentityHeader
from propylon.policies.request_id import RequestIdPolicy
from propylon.routing import MethodNotAllowed, NoRoute, RouteMatch, Router
from propylon.stats import (
    GatewayStats,
    RouteStats,
    StatsExchange,
    StatsGate,
    UpstreamStats,
    render_report,
)
from propylon.tracing.context import SpanSink, Tracing
from propylon.upstream.checker import HealthChecker
from propylon.upstream.head import HeadComposer
from propylon.upstream.health import NEVER_EJECTED
from propylon.upstream.pool import UpstreamPool, sized_pool
from propylon.upstream.retry import RetryPolicy
from propylon.upstream.selector import Tables, selector_for

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("propylon")

# TRACE would echo back the identity and forwarding headers the gateway sets; CONNECT is a
# tunnel (the parser refuses it first; this is the second line). Refused on every route.
REFUSED_METHODS = frozenset({b"TRACE", b"CONNECT"})
DECISION_CACHE_SIZE = 4096
# Decisions are remembered only for request targets and hosts up to these sizes, so the
# cache holds at most DECISION_CACHE_SIZE * ~1.3 KiB of keys (plus their downstream targets,
# no larger): a flood of huge unique targets is routed afresh each time and kept nowhere.
MAX_CACHED_TARGET = 1024
MAX_CACHED_HOST = 255


class Routed:
    """Where a request goes: its route's plan and the downstream request target. (Plain,
    with ``Final`` fields: one is built per new request target, and a dataclass's generated
    ``__init__`` stays interpreted where this module is compiled.)"""

    __slots__ = ("plan", "target")

    def __init__(self, plan: RoutePlan, target: bytes) -> None:
        self.plan: Final = plan
        self.target: Final = target


class Gateway(Handler, Terminal):
    # The current generation's parts, as the request path reads them (set by ``_install``).
    generation: Generation
    config: GatewayConfig
    router: Router
    plans: list[RoutePlan]
    site: Site
    authenticator: Authenticator
    identity: IdentityHeader
    request_id: RequestIdPolicy
    proxies: TrustedProxies
    composer: HeadComposer
    stats_gate: StatsGate
    stats_path: str | None
    exchange_context: ExchangeContext
    _host_sensitive: bool
    _allow_double_encoding: bool
    _decisions: dict[tuple[bytes, bytes, bytes | None], Routed]

    def __init__(
        self,
        config: GatewayConfig,
        *,
        worker_id: int = 0,
        workers: int = 1,
        run_dir: str | None = None,
        digest: str = "",
        access_log: AccessSink | None = None,
    ) -> None:
        self.access_log = access_log
        """The access log (``propylon.logs.access``), when on: told of every request's end."""
        # Built inside the running loop that will serve it (runner and tests both do).
        self.loop = asyncio.get_running_loop()
        self.worker_id = worker_id
        self.workers = workers
        self.run_dir = run_dir
        self.stats = GatewayStats([], [])
        self.pools: dict[tuple[str, str, int], UpstreamPool] = {}
        self.tables = Tables()
        """Sticky-session tables by cookie name: they outlive reloads."""
        self.watchdog = Watchdog(self.loop)
        self.fault_log = FaultLog()
        self.connections: set[ClientConnection] = set()
        self.draining = False
        self.drained = asyncio.Event()
        """Set when, while draining, the last client connection has closed."""
        self._servers: list[asyncio.Server] = []
        self.tls: TlsListener | None = None
        """The TLS listener, when the config has one (engine/listeners.py)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.tracing = Tracing(config.tracing.sample_ratio)
        """W3C trace context on every proxied request; spans too once ``start`` opened the
        OTLP sink (``config.tracing.otlp_endpoint``). Set once: a reload keeps the
        tracing settings (config/changes.py)."""
        self._span_sink: Any = None
        self._reloading = asyncio.Lock()
        self._retiring: list[tuple[Generation, Generation]] = []
        """Replaced generations not closed yet, each with the one that replaced it."""
        generation, pools = self._build(config, digest, None)
        self.generation = generation
        self._install(generation, pools)
        self.stats_exchange = (
            StatsExchange(self.stats, run_dir, worker_id, workers)
            # Supervised workers (a run dir) always serve theirs: the admin process reads it.
            if run_dir is not None
            else None
        )

    def _build(
        self, config: GatewayConfig, digest: str, previous: Generation | None
    ) -> tuple[Generation, dict[tuple[str, str, int], UpstreamPool]]:
        """Everything ``config`` needs, built beside the generation serving now (which it
        does not touch): returns it with the pools it uses, existing ones kept."""
        limits = config.limits
        hosts: dict[tuple[str, str, int], None] = {}
        for spec in config.routes:
            for h in spec.downstream_hosts:
                if not discovered(spec, h):  # a discovered name has a pool per address
                    hosts[(spec.downstream_scheme, h.host, h.port)] = None
        pools: dict[tuple[str, str, int], UpstreamPool] = {}
        for key in hosts:
            pool = self.pools.get(key)
            if pool is None:
                stats = self.stats.upstreams.get(f"{key[1]}:{key[2]}") or UpstreamStats()
                pool = sized_pool(key[0], key[1], key[2], limits, stats, self.loop.time)
            pools[key] = pool
        # A host listed by several routes has one health: the first route's policies (on a
        # reload, a kept host's policy is set afresh, as if it were new; its state stays).
        for pool in pools.values():
            pool.health.apply(NEVER_EJECTED)
        checks: dict[str, tuple[UpstreamPool, HealthCheckSpec]] = {}
        for spec in reversed(config.routes):
            for h in spec.downstream_hosts:
                if discovered(spec, h):
                    continue
                pool = pools[(spec.downstream_scheme, h.host, h.port)]
                if spec.ejection is not None:
                    pool.health.apply(spec.ejection)
                if spec.health_check is not None:
                    checks[pool.key] = (pool, spec.health_check)
        for pool in pools.values():
            if pool.health.checked_down and pool.key not in checks:
                # Its active check was removed: nothing else would bring it back.
                pool.health.check_passed(1)
        if (
            previous is not None
            and previous.config.providers == config.providers
            and (previous.config.limits.token_cache_size == limits.token_cache_size)
        ):
            # Unchanged providers: their JWKS key sets and verified-token cache carry on.
            authenticator = previous.authenticator
        else:
            authenticator = Authenticator(config.providers, cache_size=limits.token_cache_size)
        identity = IdentityHeader(config.identity_header)
        site = Site(
            config,
            authenticator,
            identity,
            self._spawn,
            worker_id=self.worker_id,
            workers=self.workers,
            run_dir=self.run_dir,
            previous=None if previous is None else previous.site,
        )
        request_id_lower = config.request_id_header.lower().encode("ascii")
        checker = HealthChecker(list(checks.values()), self.loop.time)
        generation = Generation(
            config,
            digest,
            Router(config.routes),
            site,
            authenticator,
            checker,
            ExchangeContext(
                self.watchdog,
                self.fault_log,
                request_id_lower,
                limits.upstream_queue_timeout,
                self.access_log,
            ),
        )
        # Each generation resolves its own names (at its start, before it serves): a
        # reload re-resolves them, and their per-address pools start afresh.
        found = DiscoveredHosts(config, self.stats, checker, self.tables, self.loop.time)
        generation.discovered = found if found else None
        stripped = (
            stripped_names(config.routes)
            | {identity.lower, ASSERTION_HEADER_LOWER}
            | {n.lower().encode("ascii") for n in config.forwarding.strip_client_headers}
        )
        generation.header_rules = HeaderRules(stripped, generation.request_id.lower)
        kept_stats = {(r.label, r.source): r for r in self.stats.routes}
        kept_plans = (
            {plan.route.spec.counter_key: plan for plan in previous.plans}
            if previous is not None
            else {}
        )
        for route in generation.router.routes:
            spec = route.spec
            old = kept_plans.get(spec.counter_key)
            if spec.discovery is not None and generation.discovered is not None:
                # Its names' addresses arrive at the generation's start; until then, what
                # it has of them.
                selector = generation.discovered.selector(spec, pools)
            elif old is not None and old.route.spec == spec:
                # The same route: its selector (round-robin position, requests in flight
                # per host) carries on.
                selector = old.selector
            else:
                route_pools = [
                    pools[(spec.downstream_scheme, h.host, h.port)] for h in spec.downstream_hosts
                ]
                selector = selector_for(spec.balancer, route_pools, self.loop.time, self.tables)
            ending = PlanEnding(self)
            plan = RoutePlan(
                route,
                selector,
                kept_stats.get((spec.label, spec.source)) or RouteStats(spec.label, spec.source),
                Chain(
                    route_stages(spec, site),
                    ending,
                    route_response_stages(spec, site),
                    timed=self.access_log is not None,  # its lines say how long requests took
                ),
                allow_underscores=config.forwarding.allow_underscores,
                retry=(
                    RetryPolicy(spec.retries, self.loop.time) if spec.retries.attempts > 1 else None
                ),
            )
            ending.plan = plan
            ending.generation = generation
            generation.plans.append(plan)
            # What the route's stages count is read into its stats when a snapshot is taken.
            decisions, breaker = site.route_counters(spec)
            plan.stats.rate_limit = decisions
            plan.stats.breaker = breaker.snapshot if breaker is not None else None
        # Stages shared by several routes start and stop once.
        generation.stages = list(
            {id(stage): stage for plan in generation.plans for stage in plan.chain.stages}.values()
        )
        if generation.discovered is not None:
            generation.discovered.attach(generation.plans, pools)
        return generation, pools

    def _install(
        self, generation: Generation, pools: dict[tuple[str, str, int], UpstreamPool]
    ) -> None:
        """Make ``generation`` the one new requests are matched against: one synchronous
        step, so no request sees half of it. These attributes are the request path's view
        of it (set only here, together); a request already routed holds its own plan."""
        self.generation = generation
        self.config = generation.config
        self.router = generation.router
        self.plans = generation.plans
        self.site = generation.site
        self.authenticator = generation.authenticator
        self.identity = generation.identity
        self.request_id = generation.request_id
        self.responder = generation.responder
        self.client_limits = generation.client_limits
        """New connections take these limits; those already open keep theirs."""
        assert generation.header_rules is not None
        self.header_rules = generation.header_rules
        self.proxies = generation.proxies
        self.composer = generation.composer
        self.stats_gate = generation.stats_gate
        self.stats_path = generation.stats_path
        self.exchange_context = generation.exchange_context
        self._host_sensitive = generation.host_sensitive
        self._allow_double_encoding = generation.allow_double_encoding
        self._decisions = {}
        self.pools = pools
        self.stats.routes = [plan.stats for plan in generation.plans]
        upstreams = {pool.key: pool.stats for pool in pools.values()}
        found = generation.discovered
        if found is not None:
            # Discovered addresses (``name:port@address``), resolved at the generation's start.
            for address_pools in found.sets.values():
                for pool in address_pools.values():
                    upstreams[pool.key] = pool.stats
        self.stats.upstreams = upstreams
        self.stats.discovery = found.snapshot if found is not None else None

    async def reload(self, config: GatewayConfig, digest: str = "") -> None:
        """Serve ``config`` from now on. Raises (and changes nothing) when it cannot be
        built; otherwise the new generation is started off to the side and swapped in, and
        the old one is closed once its requests had ``limits.drain_timeout`` to finish.
        Upstream pools the new config no longer lists close now: their idle connections at
        once, the busy ones as their exchanges end."""
        async with self._reloading:  # one at a time: each builds on the one before
            previous = self.generation
            generation, pools = self._build(config, digest, previous)
            failure: BaseException | None = None
            try:
                await generation.start(previous)
            except BaseException as exc:
                failure = exc
            if failure is not None:
                # Closed outside the except block: compiled code must not await there
                # (tests/unit/test_compiled_source.py says why).
                await generation.close(previous)
                raise failure
            if self.draining:
                await generation.close(previous)
                return
            removed = [pool for key, pool in self.pools.items() if key not in pools]
            self._install(generation, pools)
            for pool in removed:
                pool.close()
            await previous.checker.close()  # the new generation checks the hosts now
            await previous.stop_discovery()  # and follows the names
            self._retiring.append((previous, generation))
            self._spawn(self._retire(previous, generation))

    async def _retire(self, old: Generation, successor: Generation) -> None:
        """Close ``old`` once its requests have had the drain timeout to finish (a request
        waiting on its state store or its JWKS still has them meanwhile)."""
        try:
            await asyncio.sleep(old.config.limits.drain_timeout)
        except asyncio.CancelledError:
            return  # stopping: ``stop`` closes it
        self._retiring.remove((old, successor))
        await old.close(successor)

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.watchdog.start()
        await self.generation.start(None)
        if self.stats_exchange is not None:
            await self.stats_exchange.start()
        if self.config.tracing.otlp_endpoint is not None:
            self._open_span_sink()
        tls = self.config.tls
        if tls is None or not tls.only:
            # The connection is an asyncio protocol by its methods, not by subclassing (its
            # base is the exchange's native Downstream class): typeshed wants a BaseProtocol.
            protocol: Any = lambda: ClientConnection(self)  # noqa: E731
            server = await self.loop.create_server(
                protocol,
                host,
                port,
                reuse_port=reuse_port or None,
                backlog=4096,
            )
            self._servers.append(server)
        if tls is not None:
            self.tls = TlsListener.build(self, tls)
            await self.tls.start(host, reuse_port=reuse_port)

    @property
    def sockets(self) -> Sequence[socket.socket]:
        # getattr: typeshed says tuple, uvloop returns a list, and compiled code checks types.
        return [s for server in self._servers for s in getattr(server, "sockets", ())]

    @property
    def port(self) -> int:
        """The plain listener's port (the TLS one's with ``tls.only``)."""
        if not self._servers and self.tls is not None:
            return self.tls.port
        return int(self.sockets[0].getsockname()[1])

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish (bounded), then close everything."""
        timeout = self.config.limits.drain_timeout if drain_timeout is None else drain_timeout
        self.draining = True
        for server in self._servers:
            server.close()
        if self.tls is not None:
            self.tls.close()
        for conn in list(self.connections):
            conn.close_if_idle()
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), timeout)
        for conn in list(self.connections):
            conn.abort()
        for pool in self.pools.values():
            pool.close()
        for task in list(self._tasks):
            task.cancel()
        self.watchdog.stop()
        await self.generation.close()
        for old, successor in self._retiring:
            await old.close(successor)
        self._retiring.clear()
        if self.stats_exchange is not None:
            await self.stats_exchange.close()
        sink, self._span_sink = self._span_sink, None
        if sink is not None:
            self.tracing.sink = None
            await sink.close()

    def _open_span_sink(self) -> None:
        # Imported only here: the [otlp] extra (the SDK, protobuf, urllib3) is ~10 MiB a worker.
        from propylon.tracing.export import OtlpSink

        sink = OtlpSink(self.config.tracing, worker_id=self.worker_id)
        sink.start()
        self._span_sink = sink
        self.tracing.sink = sink
        self.stats.spans = sink.counts

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the request path -----------------------------------------------------------------------
    def decide(self, conn: ClientConnection, request: Request) -> errors.ErrorKind | None:
        """Serve ``request`` or name why not. Returning None means the request is handled."""
        target = request.target
        key = (request.method, target, request.host if self._host_sensitive else None)
        routed = self._decisions.get(key)
        if routed is None:
            outcome = self._route(conn, request)
            if not isinstance(outcome, Routed):
                return outcome
            routed = outcome
            host = key[2]
            if (
                target[:1] == b"/"
                and len(target) <= MAX_CACHED_TARGET
                and (host is None or len(host) <= MAX_CACHED_HOST)
            ):
                # Same method, raw target (and Host where routes look at it): same decision,
                # because the router is immutable (a reload installs a new, empty cache).
                # Bounded, so unique URLs cannot grow it.
                if len(self._decisions) >= DECISION_CACHE_SIZE:
                    self._decisions.clear()
                self._decisions[key] = routed
        plan = routed.plan
        chain = plan.chain
        flow = Flow(conn, request, routed.target, plan.index, self.proxies, chain, self._spawn)
        sink = self.tracing.sink
        if sink is not None:
            self._begin_trace(conn, flow, plan, sink)
        if chain.timed:
            flow.started = conn.clock()
        if chain.stages:
            chain.run(flow)
        else:
            # No stage on this route: straight to the terminal, without the chain's loop.
            self._forward(conn, flow, plan, self.generation)
        return None

    def _begin_trace(
        self, conn: ClientConnection, flow: Flow, plan: RoutePlan, sink: SpanSink
    ) -> None:
        trace = self.tracing.begin(flow.request, sink)
        if trace.sampled:
            trace.route = plan.route.spec.upstream_path
            trace.scheme = conn.scheme
            trace.client_address = flow.client_address()
        flow.trace = trace

    def _route(self, conn: ClientConnection, request: Request) -> Routed | errors.ErrorKind | None:
        """Target form -> canonical path -> /stats or a route (None: answered already)."""
        if request.method in REFUSED_METHODS:
            return errors.METHOD_NOT_IMPLEMENTED
        # A fragment is never sent by a conforming client and never goes upstream, not even
        # inside the query.
        target = request.target.partition(b"#")[0]
        if target[:1] == b"/":
            raw_path, _, query = target.partition(b"?")
        elif target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
            try:
                # Any: httptools' stubs declare every part present, but a part the target
                # lacks (port, path, query) is None, which compiled code would refuse.
                url: Any = httptools.parse_url(target)
            except httptools.HttpParserInvalidURLError:
                return errors.BAD_REQUEST
            raw_path, query = url.path or b"/", url.query or b""
            if url.host:
                # RFC 9112 s.3.2.2: an absolute-form target overrides Host. httptools gives
                # an IPv6 literal without its brackets; Host needs them back.
                host = b"[%s]" % url.host if b":" in url.host else url.host
                if url.port is not None:
                    host = b"%s:%d" % (host, url.port)
                try:
                    request.host = self.header_rules.hosts.normalise(host)
                except HostRejected:
                    return errors.BAD_REQUEST
        else:
            return errors.BAD_REQUEST
        try:
            path = canonicalise(
                raw_path.decode("ascii"), allow_double_encoding=self._allow_double_encoding
            )
            query_text = query.decode("ascii")
        except (PathRejected, UnicodeDecodeError):
            return errors.BAD_PATH
        if path == self.stats_path:
            return self._serve_stats(conn, request)
        host = request.host.decode("latin-1") if request.host is not None else None
        result = self.router.match(request.method.decode("ascii"), host, path, query_text)
        if isinstance(result, RouteMatch):
            downstream = result.downstream_target(path, query_text).encode("ascii")
            return Routed(self.plans[result.route.index], downstream)
        if isinstance(result, MethodNotAllowed):
            conn._finish_with_error(
                errors.METHOD_NOT_ALLOWED, request, (("Allow", ", ".join(result.allowed)),)
            )
            return None
        assert isinstance(result, NoRoute)
        return errors.ROUTE_NOT_FOUND

    # -- where chains end (each plan's PlanEnding calls these) -------------------------------
    def forward_on(self, flow: Flow, plan: RoutePlan, generation: Generation) -> None:
        """Every stage continued: the proxy terminal."""
        self._forward(cast(ClientConnection, flow.client), flow, plan, generation)

    def _forward(
        self, conn: ClientConnection, flow: Flow, plan: RoutePlan, generation: Generation
    ) -> None:
        """Compose the upstream head and start the exchange (with the generation the
        request was routed by, even when a reload came while a stage waited)."""
        request = flow.request
        pool = plan.selector.pick(flow)
        if pool is None:
            # Every host is out: say so at once rather than try one known to be failing.
            flow.refuse(errors.NO_UPSTREAM)
            self.respond_on(flow, plan)
            return
        # The same line goes upstream and back to the client.
        request_id_line = generation.request_id.line(request.request_id)
        trace = flow.trace
        trace_lines = (
            trace.upstream_lines() if trace is not None else self.tracing.upstream_lines(request)
        )
        flow.trace_lines = trace_lines
        head = generation.composer.upstream_head(
            request,
            flow.target,
            pool.host_header,
            allow_underscores=plan.allow_underscores,
            peer=conn.peer,
            local_port=conn.local_port,
            scheme=conn.scheme,
            connection_lines=conn.forwarding_lines,
            stage_lines=flow.upstream_lines,
            request_id_line=request_id_line,
            trace_lines=trace_lines,
        )
        conn.proceed(
            Exchange(
                conn,
                flow,
                plan,
                pool,
                head,
                request_id_line,
                conn.clock(),
                generation.exchange_context,
            )
        )

    def respond_on(self, flow: Flow, plan: RoutePlan) -> None:
        """A stage answered: counted on the route, written without the upstream."""
        reply = flow.reply
        assert reply is not None
        conn = cast(ClientConnection, flow.client)
        started = self.loop.time()
        plan.stats.begin()
        keep = conn.send_reply(reply, flow.request, flow.response_lines)
        now = self.loop.time()
        plan.stats.end(reply.status, now - started, 0, 0)
        chain = plan.chain
        if chain.response_stages:
            chain.ended(flow, reply.status, now - flow.started)
        trace = flow.trace
        if trace is not None:
            kind = reply.kind
            trace.answered(reply.status, kind.codemessage if kind is not None else "")
        if self.access_log is not None:
            self.access_log.stage_answered(flow, plan, reply, now)
        conn.exchange_finished(None, keep)

    # -- /stats -----------------------------------------------------------------------------------
    def _serve_stats(self, conn: ClientConnection, request: Request) -> errors.ErrorKind | None:
        if request.method not in (b"GET", b"HEAD"):
            conn._finish_with_error(errors.METHOD_NOT_ALLOWED, request, (("Allow", "GET, HEAD"),))
            return None
        client = self.proxies.client_address(conn.peer, request.forwarded_for)
        if not self.stats_gate.client_allowed(client) and not self._stats_token_ok(request):
            return errors.FORBIDDEN
        self._spawn(self._send_stats(conn, request))
        return None

    def _stats_token_ok(self, request: Request) -> bool:
        requirement = self.config.stats.auth
        if requirement is None or not request.authorization:
            return False
        try:
            principal = self.authenticator.authenticate(
                request.authorization, requirement.providers
            )
        except AuthFailure:
            return False
        return authorize(principal, requirement)

    async def _send_stats(self, conn: ClientConnection, request: Request) -> None:
        if self.stats_exchange is not None:
            snapshot = await self.stats_exchange.collect()
        else:
            snapshot = self.stats.snapshot()
        body = orjson.dumps(render_report(snapshot, workers=self.workers))
        if conn.transport is not None and not conn.transport.is_closing():
            conn.send_json(request, 200, body)
