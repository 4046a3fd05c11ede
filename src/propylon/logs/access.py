"""The access log: one line per request served, built from what the engine already knows
when the request ends.

The engine calls this worker's ``AccessLog`` (its ``AccessSink``, ``engine/exchange.py``) at
the three places a request can end: a proxied exchange's end (``exchange_ended``, also when
the client left first, 499, or the upstream failed), a stage's answer (``stage_answered``:
401, 403, 429, a CORS preflight, no upstream host left) and an answer the gateway made
before any route took the request (``gateway_answered``: 400, 404, 405, 408, 413, ``/stats``).
Each is one line, so the lines equal the requests served. Loaded only when the log is on: a
gateway without one runs a single ``None`` check per request end.

Nothing here blocks: the line goes to a ``LineWriter`` (``logs/writer.py``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from propylon import errors
from propylon.config.model import AccessLogSpec
from propylon.logs.formats import (
    NULL,
    combined_line,
    json_fragment,
    json_inside,
    json_line,
    json_path,
    proxied_json_line,
    redact,
)
from propylon.logs.writer import LineWriter
from propylon.policies.forwarding import TrustedProxies

if TYPE_CHECKING:
    from collections.abc import Sequence

    from propylon.engine.exchange import Exchange
    from propylon.engine.route_plan import RoutePlan
    from propylon.http.request import Request
    from propylon.plane.stage import Flow, Reply

RATE_LIMIT_STAGE = "rate_limit"
ALLOWED = "allowed"
ALLOWED_JSON = json_fragment(ALLOWED)
# How a rate-limit stage's own refusal reads (anything else it refuses with is "limited").
_REFUSALS = {
    errors.STATE_UNAVAILABLE.codemessage: "unavailable",
    errors.CLIENT_NOT_IDENTIFIED.codemessage: "unidentified",
}


MAX_REMEMBERED_PLANS = 4096


class AccessLog:
    def __init__(
        self,
        spec: AccessLogSpec,
        *,
        trusted_proxies: Sequence[str] = (),
        request_id_header: str = "X-Request-Id",
        worker_id: int = 0,
    ) -> None:
        self.spec = spec
        self.writer = LineWriter(spec.path)
        self.worker_id = worker_id
        self._json = spec.format == "json"
        self._redact = spec.redact_query
        self._proxies = TrustedProxies(trusted_proxies)
        self._id_offset = len(request_id_header) + 2  # "Name: " before the id in its line
        self._worker_json = json_fragment(worker_id)
        self._upstreams: dict[str, bytes] = {}
        """host:port -> its JSON string (bounded like ``_routes``)."""
        self._routes: dict[RoutePlan, tuple[str, tuple[int, ...], bytes]] = {}
        """By plan, not by route index: a reload gives indexes to other routes (bounded:
        it starts over when reloads have left many old plans in it)."""
        """Plan -> its template, the positions of its rate-limit stages, and the template
        as JSON."""
        self._bodies: dict[errors.ErrorKind, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wall_offset = time.time()
        """Wall clock minus the loop's: a proxied line's time is the loop's ``now`` plus
        this, set again at every flush (so a clock step shows within 200 ms)."""

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set_offset()
        self.writer.start(loop, self._set_offset)

    def _set_offset(self) -> None:
        if self._loop is not None:
            self._wall_offset = time.time() - self._loop.time()

    def reopen(self) -> None:
        self.writer.reopen()

    def close(self) -> None:
        self.writer.close()

    # -- the engine's calls (engine.exchange.AccessSink) ----------------------------------------
    def exchange_ended(self, exchange: Exchange, now: float) -> None:
        # The one call on every proxied request: its facts straight into the line, from
        # per-route facts worked out once.
        flow = exchange.flow
        request = exchange.request
        plan = exchange.plan
        route = self._routes.get(plan)
        if route is None:
            route = self._route(plan)
        error = exchange.error
        cause = None
        sent = exchange.bytes_out
        if error is not None:
            cause = error.codemessage
            sent = self._body_bytes(error, request)
        fault = exchange.fault
        if fault:
            cause = f"{cause}: {fault}" if cause is not None else f"upstream {fault}"
        started = flow.started or exchange.started
        principal = flow.principal
        sub = principal.subject if principal is not None else None
        user_agent, referer = _headers(request.kept)
        target = request.target
        if self._json:
            upstream = self._upstreams.get(exchange.pool.key)
            if upstream is None:
                upstream = self._upstream(exchange.pool.key)
            request_id = exchange.request_id_line[self._id_offset :]
            if request.request_id is not None:
                # The client's (visible ASCII: it may hold a quote); else the gateway's, hex.
                request_id = json_inside(request_id)
            self.writer.write(
                proxied_json_line(
                    now + self._wall_offset,
                    request_id,
                    flow.client_address(),
                    request.method,
                    route[2],
                    json_path(target, self._redact),
                    exchange.status,
                    request.body_size,
                    sent,
                    now - started,
                    now - exchange.started,
                    upstream,
                    sub,
                    ALLOWED_JSON if route[1] else NULL,  # every stage let it through
                    cause,
                    # What the upstream received: the trace id, the gateway's span as parent.
                    flow.traceparent(),
                    user_agent,
                    self._worker_json,
                )
            )
        else:
            self.writer.write(
                combined_line(
                    now + self._wall_offset,
                    flow.client_address(),
                    request.method,
                    redact(target) if self._redact else target,
                    request.http11,
                    exchange.status,
                    sent,
                    sub,
                    referer,
                    user_agent,
                )
            )

    def stage_answered(self, flow: Flow, plan: RoutePlan, reply: Reply, now: float) -> None:
        request = flow.request
        kind = reply.kind
        if kind is not None:
            sent = self._body_bytes(kind, request)
        else:
            sent = 0 if request.method == b"HEAD" else len(reply.body)
        self._emit(
            request,
            request.request_id,
            flow.client_address(),
            (self._routes.get(plan) or self._route(plan))[0],
            reply.status,
            sent,
            now - flow.started if flow.started else None,
            flow,
            self._decision(flow, plan, reply),
            kind.codemessage if kind is not None else None,
        )

    def gateway_answered(
        self,
        peer: str,
        request: Request | None,
        status: int,
        kind: errors.ErrorKind | None,
        body_bytes: int,
    ) -> None:
        if kind is not None:
            body_bytes = self._body_bytes(kind, request)
        client = (
            self._proxies.client_address(peer, request.forwarded_for)
            if request is not None
            else peer
        )
        self._emit(
            request,
            request.request_id if request is not None else None,
            client,
            None,
            status,
            body_bytes,
            None,
            None,
            None,
            kind.codemessage if kind is not None else None,
        )

    # -- building the line --------------------------------------------------------------------
    def _emit(
        self,
        request: Request | None,
        request_id: bytes | None,
        client: str,
        route: str | None,
        status: int,
        sent: int,
        duration: float | None,
        flow: Flow | None,
        rate_limit: str | None,
        cause: str | None,
    ) -> None:
        """The line of an answer the gateway made (``exchange_ended`` builds its own);
        ``request_id``: the id the answer carried (the responder leaves it on the request)."""
        traceparent = user_agent = referer = method = path = None
        received = 0
        http11 = True
        if request is not None:
            method = request.method
            path = redact(request.target) if self._redact else request.target
            received = request.body_size
            http11 = request.http11
            user_agent, referer = _headers(request.kept)
            # Nothing went upstream: the client's own traceparent, as it sent it.
            traceparent = request.traceparent or None
        principal = flow.principal if flow is not None else None
        sub = principal.subject if principal is not None else None
        now = time.time()
        if self._json:
            self.writer.write(
                json_line(
                    now,
                    request_id,
                    client,
                    method,
                    route,
                    path,
                    status,
                    received,
                    sent,
                    duration,
                    None,
                    None,
                    sub,
                    rate_limit,
                    cause,
                    traceparent,
                    user_agent,
                    self.worker_id,
                )
            )
        else:
            self.writer.write(
                combined_line(
                    now, client, method, path, http11, status, sent, sub, referer, user_agent
                )
            )

    def _body_bytes(self, kind: errors.ErrorKind, request: Request | None) -> int:
        """The length of ``kind``'s envelope as sent (nothing for a HEAD request)."""
        if request is not None and request.method == b"HEAD":
            return 0
        size = self._bodies.get(kind)
        if size is None:
            size = len(errors.envelope(kind.code, kind.codemessage, kind.message))
            self._bodies[kind] = size
        return size

    def _route(self, plan: RoutePlan) -> tuple[str, tuple[int, ...], bytes]:
        stages = plan.chain.stages
        limiters = tuple(i for i, s in enumerate(stages) if s.name == RATE_LIMIT_STAGE)
        if len(self._routes) >= MAX_REMEMBERED_PLANS:
            self._routes.clear()
        template = plan.route.spec.upstream_path
        route = self._routes[plan] = (template, limiters, json_fragment(template))
        return route

    def _upstream(self, key: str) -> bytes:
        if len(self._upstreams) >= MAX_REMEMBERED_PLANS:
            self._upstreams.clear()  # discovered addresses come and go
        fragment = self._upstreams[key] = json_fragment(key)
        return fragment

    def _decision(self, flow: Flow, plan: RoutePlan, reply: Reply) -> str | None:
        """What the route's rate limit decided about a request a stage answered, or None
        when no limit was judged (the route has none, or an earlier stage answered)."""
        route = self._routes.get(plan) or self._route(plan)
        if not route[1]:
            return None
        # Where the request stopped: the stage that answered, or past every stage.
        answered_at = flow.position
        if reply.kind is errors.NO_UPSTREAM:
            answered_at = len(plan.chain.stages)
        decision = None
        for position in route[1]:
            if position < answered_at:
                decision = ALLOWED
            elif position == answered_at:
                kind = reply.kind
                codemessage = kind.codemessage if kind is not None else ""
                decision = _REFUSALS.get(codemessage, "limited")
        return decision


def _headers(kept: list[bytes]) -> tuple[bytes | None, bytes | None]:
    """``User-Agent`` and ``Referer`` from the request's header lines, in one pass (a byte
    compare first: most lines are neither)."""
    user_agent = referer = None
    for line in kept:
        first = line[0] | 0x20
        if first == 0x75 and line[:11].lower() == b"user-agent:":
            user_agent = line[11:].strip()
        elif first == 0x72 and line[:8].lower() == b"referer:":
            referer = line[8:].strip()
    return user_agent, referer
