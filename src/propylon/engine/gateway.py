"""One worker's gateway: everything built once at start-up, and the per-request decision.

``decide`` is the request path in order: target form -> canonical path -> ``/stats`` ->
route -> authentication -> authorization -> forward. Each refusal is an ``ErrorKind`` that the
connection turns into a JSON response; nothing reaches an upstream before every check passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING, Any, Final

import httptools
import orjson

from propylon import errors
from propylon.auth import Authenticator, AuthFailure, KeyRefreshNeeded, Principal, authorize
from propylon.config.model import AuthRequirement, GatewayConfig
from propylon.engine.exchange import Exchange
from propylon.engine.fault_log import FaultLog
from propylon.engine.listeners import TlsListener
from propylon.http.request import HeaderRules, Request
from propylon.engine.server import ClientConnection, ClientLimits
from propylon.engine.upstream import UpstreamPool
from propylon.engine.watchdog import Watchdog
from propylon.http.host import HostRejected
from propylon.paths import PathRejected, canonicalise
from propylon.pipeline import HeadComposer, RoutePlan
from propylon.policies.claim_headers import stripped_names
from propylon.policies.forwarding import TrustedProxies
from propylon.policies.identity import IdentityHeader, claimed_identity
from propylon.policies.request_id import RequestIdPolicy
from propylon.routing import MethodNotAllowed, NoRoute, RouteMatch, Router
from propylon.stats import GatewayStats, StatsExchange, StatsGate, render_report

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("propylon")

CHALLENGE = (("WWW-Authenticate", "Bearer"),)
INVALID_TOKEN = (("WWW-Authenticate", 'Bearer error="invalid_token"'),)
INSUFFICIENT_SCOPE = (("WWW-Authenticate", 'Bearer error="insufficient_scope"'),)
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


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        worker_id: int = 0,
        workers: int = 1,
        run_dir: str | None = None,
    ) -> None:
        self.config = config
        # Built inside the running loop that will serve it (runner and tests both do).
        self.loop = asyncio.get_running_loop()
        self.worker_id = worker_id
        self.workers = workers
        self.router = Router(config.routes)
        self.identity = IdentityHeader(config.identity_header)
        self.request_id = RequestIdPolicy(config.request_id_header)
        stripped = (
            stripped_names(config.routes)
            | {self.identity.lower}
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
        self.plans = [
            RoutePlan(
                route,
                [
                    self.pools[(route.spec.downstream_scheme, h.host, h.port)]
                    for h in route.spec.downstream_hosts
                ],
                self.stats.routes[route.index],
                allow_underscores=config.forwarding.allow_underscores,
            )
            for route in self.router.routes
        ]
        self.stats_gate = StatsGate(config.stats)
        self.stats_path = config.stats.path if config.stats.enabled else None
        self.stats_exchange = (
            StatsExchange(self.stats, run_dir, worker_id, workers)
            if run_dir is not None and workers > 1
            else None
        )
        self.watchdog = Watchdog(self.loop)
        self.fault_log = FaultLog()
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
        if self.stats_exchange is not None:
            await self.stats_exchange.start()
        tls = self.config.tls
        if tls is None or not tls.only:
            server = await self.loop.create_server(
                lambda: ClientConnection(self),
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
        await self.authenticator.close()
        if self.stats_exchange is not None:
            await self.stats_exchange.close()

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = self.loop.create_task(coro)  # type: ignore[arg-type]
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
        requirement = routed.plan.auth
        if requirement is None:
            self._forward(conn, request, routed, None)
            return None
        try:
            principal = self.authenticator.authenticate(
                request.authorization, requirement.providers
            )
        except KeyRefreshNeeded as refresh:
            self._spawn(self._authenticate_after_refresh(conn, request, routed, refresh))
            return None
        except AuthFailure:
            self._refuse(conn, request, routed.plan, errors.UNAUTHORIZED, self._challenge(request))
            return None
        # _authorized, inlined: this is the per-request path of every authenticated route.
        if authorize(principal, requirement):
            self._forward(conn, request, routed, principal)
        else:
            self._refuse(conn, request, routed.plan, errors.FORBIDDEN, INSUFFICIENT_SCOPE)
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

    async def _authenticate_after_refresh(
        self,
        conn: ClientConnection,
        request: Request,
        routed: Routed,
        refresh: KeyRefreshNeeded,
    ) -> None:
        await refresh.refresh()
        if conn.transport is None or conn.transport.is_closing():
            return
        requirement = routed.plan.auth
        assert requirement is not None
        try:
            principal = self.authenticator.authenticate(
                request.authorization, requirement.providers
            )
        except AuthFailure:
            self._refuse(conn, request, routed.plan, errors.UNAUTHORIZED, self._challenge(request))
            return
        self._authorized(conn, request, routed, principal, requirement)

    def _authorized(
        self,
        conn: ClientConnection,
        request: Request,
        routed: Routed,
        principal: Principal,
        requirement: AuthRequirement,
    ) -> None:
        if not authorize(principal, requirement):
            self._refuse(conn, request, routed.plan, errors.FORBIDDEN, INSUFFICIENT_SCOPE)
            return
        self._forward(conn, request, routed, principal)

    def _forward(
        self,
        conn: ClientConnection,
        request: Request,
        routed: Routed,
        principal: Principal | None,
    ) -> None:
        plan = routed.plan
        identity_lines: list[bytes] = []
        if principal is not None:
            claim = plan.identity_claim
            subject = (
                principal.subject if claim is None else claimed_identity(principal.claims, claim)
            )
            if subject is None:
                # A valid token without the claim this route sends as the identity names
                # nobody here: refused, never forwarded with the sub or with no identity.
                self._refuse(conn, request, plan, errors.FORBIDDEN, INSUFFICIENT_SCOPE)
                return
            identity_line = self.identity.line(subject)
            if identity_line is None:
                self._refuse(conn, request, plan, errors.UNAUTHORIZED, INVALID_TOKEN)
                return
            identity_lines.append(identity_line)
            if plan.claim_headers:
                identity_lines.extend(plan.claim_headers.lines(principal.claims))
        pool = plan.next_pool()
        # The same line goes upstream and back to the client.
        request_id_line = self.request_id.line(request.request_id)
        head = self.composer.upstream_head(
            request,
            routed.target,
            pool,
            plan,
            peer=conn.peer,
            local_port=conn.local_port,
            scheme=conn.scheme,
            connection_lines=conn.forwarding_lines,
            identity_lines=identity_lines,
            request_id_line=request_id_line,
        )
        conn.proceed(Exchange(conn, request, plan, pool, head, request_id_line, conn.clock()))

    def _refuse(
        self,
        conn: ClientConnection,
        request: Request,
        plan: RoutePlan,
        kind: errors.ErrorKind,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        """A matched route said no: counted on the route, answered without the upstream."""
        started = self.loop.time()
        plan.stats.begin()
        keep = conn.send_error_bytes(kind, request, headers)
        plan.stats.end(kind.status, self.loop.time() - started, 0, 0)
        conn.exchange_finished(None, keep)

    @staticmethod
    def _challenge(request: Request) -> tuple[tuple[str, str], ...]:
        return INVALID_TOKEN if request.authorization else CHALLENGE

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
