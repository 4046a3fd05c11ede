"""One worker's gateway: everything built once at start-up, and the per-request decision.

``decide`` is the request path up to the route: target form -> canonical path -> ``/stats``
-> route (remembered per method, target and host). From there the route's chain runs its
stages (``plane/chain.py``); the gateway is where chains end: ``forward`` (the proxy terminal)
and ``respond`` (a stage's answer). Nothing reaches an upstream before every stage continued.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, cast

import httptools
import orjson

from propylon import errors
from propylon.auth import Authenticator, AuthFailure, authorize
from propylon.auth.assertion import ASSERTION_HEADER_LOWER
from propylon.config.model import GatewayConfig, HealthCheckSpec
from propylon.engine.client_limits import ClientLimits
from propylon.engine.exchange import AccessSink, Exchange, ExchangeContext
from propylon.engine.fault_log import FaultLog
from propylon.engine.listeners import TlsListener
from propylon.engine.responder import Responder
from propylon.engine.route_plan import RoutePlan
from propylon.engine.server import ClientConnection, Handler
from propylon.engine.watchdog import Watchdog
from propylon.http.host import HostRejected
from propylon.http.request import HeaderRules, Request
from propylon.paths import PathRejected, canonicalise
from propylon.plane.build import Site, route_response_stages, route_stages
from propylon.plane.chain import Chain, Ending
from propylon.plane.stage import Flow, RequestStage
from propylon.policies.claim_headers import stripped_names
from propylon.policies.forwarding import TrustedProxies
from propylon.policies.identity import IdentityHeader
from propylon.policies.request_id import RequestIdPolicy
from propylon.routing import MethodNotAllowed, NoRoute, RouteMatch, Router
from propylon.stats import GatewayStats, StatsExchange, StatsGate, render_report
from propylon.upstream.checker import HealthChecker
from propylon.upstream.head import HeadComposer
from propylon.upstream.pool import UpstreamPool
from propylon.upstream.selector import Tables, selector_for

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("propylon")

# TRACE would echo back the identity and forwarding headers the gateway sets; CONNECT is a
# tunnel (the parser refuses it first; this is the second line). Refused on every route.
REFUSED_METHODS = frozenset({b"TRACE", b"CONNECT"})
UPSTREAM_IDLE_TIMEOUT = 30.0
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


class Gateway(Handler, Ending):
    def __init__(
        self,
        config: GatewayConfig,
        *,
        worker_id: int = 0,
        workers: int = 1,
        run_dir: str | None = None,
        access_log: AccessSink | None = None,
    ) -> None:
        self.config = config
        self.access_log = access_log
        """The access log (``propylon.logs.access``), when on: told of every request's end."""
        # Built inside the running loop that will serve it (runner and tests both do).
        self.loop = asyncio.get_running_loop()
        self.worker_id = worker_id
        self.workers = workers
        self.router = Router(config.routes)
        self.identity = IdentityHeader(config.identity_header)
        self.request_id = RequestIdPolicy(config.request_id_header)
        self.responder = Responder(self.request_id)
        stripped = (
            stripped_names(config.routes)
            | {self.identity.lower, ASSERTION_HEADER_LOWER}
            | {n.lower().encode("ascii") for n in config.forwarding.strip_client_headers}
        )
        self.header_rules = HeaderRules(stripped, self.request_id.lower)
        self.proxies = TrustedProxies(config.trusted_proxies)
        self.composer = HeadComposer(self.proxies)
        limits = config.limits
        self.client_limits = ClientLimits(limits)
        self.authenticator = Authenticator(config.providers, cache_size=limits.token_cache_size)
        hosts: dict[tuple[str, str, int], None] = {}
        for spec in config.routes:
            for h in spec.downstream_hosts:
                hosts[(spec.downstream_scheme, h.host, h.port)] = None
        self.stats = GatewayStats(
            [(s.label, s.source) for s in config.routes],
            sorted({f"{host}:{port}" for _scheme, host, port in hosts}),
        )
        self.pools = {
            key: UpstreamPool(
                key[0],
                key[1],
                key[2],
                max_idle=limits.upstream_pool_size,
                connect_timeout=limits.connect_timeout,
                idle_timeout=UPSTREAM_IDLE_TIMEOUT,
                stats=self.stats.upstreams[f"{key[1]}:{key[2]}"],
            )
            for key in hosts
        }
        # A host listed by several routes has one health: the first route's policies.
        checks: dict[str, tuple[UpstreamPool, HealthCheckSpec]] = {}
        for spec in reversed(config.routes):
            for h in spec.downstream_hosts:
                pool = self.pools[(spec.downstream_scheme, h.host, h.port)]
                if spec.ejection is not None:
                    pool.health.apply(spec.ejection)
                if spec.health_check is not None:
                    checks[pool.key] = (pool, spec.health_check)
        for pool in self.pools.values():
            pool.stats.health = functools.partial(pool.health.snapshot, self.loop.time, time.time)
        self.checker = HealthChecker(list(checks.values()), self.loop.time)
        tables = Tables()
        self.site = Site(
            config,
            self.authenticator,
            self.identity,
            self._spawn,
            worker_id=worker_id,
            workers=workers,
            run_dir=run_dir,
        )
        self.plans: list[RoutePlan] = []
        for route in self.router.routes:
            pools = [
                self.pools[(route.spec.downstream_scheme, h.host, h.port)]
                for h in route.spec.downstream_hosts
            ]
            plan = RoutePlan(
                route,
                selector_for(route.spec.balancer, pools, self.loop.time, tables),
                self.stats.routes[route.index],
                Chain(
                    route_stages(route.spec, self.site),
                    self,
                    route_response_stages(route.spec, self.site),
                    timed=access_log is not None,  # its lines say how long requests took
                ),
                allow_underscores=config.forwarding.allow_underscores,
            )
            self.plans.append(plan)
        # Stages shared by several routes start and stop once.
        self.stages: list[RequestStage] = list(
            {id(stage): stage for plan in self.plans for stage in plan.chain.stages}.values()
        )
        self.stats_gate = StatsGate(config.stats)
        self.stats_path = config.stats.path if config.stats.enabled else None
        self.stats_exchange = (
            StatsExchange(self.stats, run_dir, worker_id, workers)
            # Supervised workers (a run dir) always serve theirs: the admin process reads it.
            if run_dir is not None
            else None
        )
        self.watchdog = Watchdog(self.loop)
        self.fault_log = FaultLog()
        self.exchange_context = ExchangeContext(
            self.watchdog, self.fault_log, self.request_id.lower, access_log
        )
        self._decisions: dict[tuple[bytes, bytes, bytes | None], Routed] = {}
        self._host_sensitive = any(spec.upstream_host for spec in config.routes)
        self._allow_double_encoding = config.forwarding.allow_double_encoding
        self.connections: set[ClientConnection] = set()
        self.draining = False
        self.drained = asyncio.Event()
        """Set when, while draining, the last client connection has closed."""
        self._servers: list[asyncio.Server] = []
        self.tls: TlsListener | None = None
        """The TLS listener, when the config has one (engine/listeners.py)."""
        self._tasks: set[asyncio.Task[None]] = set()

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.watchdog.start()
        await self.authenticator.start()
        await self.site.start()
        for stage in self.stages:
            await stage.start()
        if self.stats_exchange is not None:
            await self.stats_exchange.start()
        self.checker.start()
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
        await self.checker.close()
        await self.authenticator.close()
        for stage in self.stages:
            await stage.close()
        await self.site.close()
        if self.stats_exchange is not None:
            await self.stats_exchange.close()

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
                # because the router is immutable. Bounded, so unique URLs cannot grow it.
                if len(self._decisions) >= DECISION_CACHE_SIZE:
                    self._decisions.clear()
                self._decisions[key] = routed
        plan = routed.plan
        chain = plan.chain
        flow = Flow(conn, request, routed.target, plan.index, self.proxies, chain, self._spawn)
        if chain.timed:
            flow.started = conn.clock()
        if chain.stages:
            chain.run(flow)
        else:
            # No stage on this route: straight to the terminal, without the chain's loop.
            self._forward(conn, flow, plan)
        return None

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

    # -- where chains end (plane.chain.Ending) ------------------------------------------------
    def forward(self, flow: Flow) -> None:
        """Every stage continued: the proxy terminal."""
        self._forward(cast(ClientConnection, flow.client), flow, self.plans[flow.route_index])

    def _forward(self, conn: ClientConnection, flow: Flow, plan: RoutePlan) -> None:
        """Compose the upstream head and start the exchange."""
        request = flow.request
        pool = plan.selector.pick(flow)
        if pool is None:
            # Every host is out: say so at once rather than try one known to be failing.
            flow.refuse(errors.NO_UPSTREAM)
            self.respond(flow)
            return
        # The same line goes upstream and back to the client.
        request_id_line = self.request_id.line(request.request_id)
        head = self.composer.upstream_head(
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
        )
        conn.proceed(
            Exchange(
                conn, flow, plan, pool, head, request_id_line, conn.clock(), self.exchange_context
            )
        )

    def respond(self, flow: Flow) -> None:
        """A stage answered: counted on the route, written without the upstream."""
        reply = flow.reply
        assert reply is not None
        plan = self.plans[flow.route_index]
        conn = cast(ClientConnection, flow.client)
        started = self.loop.time()
        plan.stats.begin()
        keep = conn.send_reply(reply, flow.request, flow.response_lines)
        now = self.loop.time()
        plan.stats.end(reply.status, now - started, 0, 0)
        chain = plan.chain
        if chain.response_stages:
            chain.ended(flow, reply.status, now - flow.started)
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
