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
from propylon.logs.formats import Entry, combined_line, json_line, redact
from propylon.logs.writer import LineWriter
from propylon.policies.forwarding import TrustedProxies

if TYPE_CHECKING:
    from collections.abc import Sequence

    from propylon.engine.exchange import Exchange
    from propylon.engine.route_plan import RoutePlan
    from propylon.http.request import Request
    from propylon.plane.stage import Flow, Reply

RATE_LIMIT_STAGE = "rate_limit"
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
        self._routes: dict[RoutePlan, tuple[str, tuple[int, ...]]] = {}
        """By plan, not by route index: a reload gives indexes to other routes (bounded:
        it starts over when reloads have left many old plans in it)."""
        """Route index -> its template and the positions of its rate-limit stages."""
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
        # The one call on every proxied request: built in one go (no helper calls beyond the
        # header scan), from per-route facts worked out once.
        flow = exchange.flow
        request = exchange.request
        plan = exchange.plan
        route = self._routes.get(plan)
        if route is None:
            route = self._route(plan)
        error = exchange.error
        cause = error.codemessage if error is not None else None
        fault = exchange.fault
        if fault:
            cause = f"{cause}: {fault}" if cause is not None else f"upstream {fault}"
        sent = exchange.bytes_out if error is None else self._body_bytes(error, request)
        started = flow.started or exchange.started
        principal = flow.principal
        _client_trace, user_agent, referer = _headers(request.kept)
        # What the upstream received: the trace id, and the gateway's span as the parent.
        forwarded = flow.traceparent()
        traceparent = forwarded.decode("latin-1") if forwarded else None
        target = request.target
        entry: Entry = {
            "time": now + self._wall_offset,
            "request_id": exchange.request_id_line[self._id_offset :].decode("latin-1"),
            "client": flow.client_address(),
            "method": request.method.decode("latin-1"),
            "route": route[0],
            "path": redact(target) if self._redact else target.decode("latin-1"),
            "status": exchange.status,
            "bytes_in": request.body_size,
            "bytes_out": sent,
            "duration_ms": round((now - started) * 1000, 3),
            "upstream_ms": round((now - exchange.started) * 1000, 3),
            "upstream": exchange.pool.key,
            "sub": principal.subject if principal is not None else None,
            "rate_limit": "allowed" if route[1] else None,  # every stage let it through
            "error": cause,
            "traceparent": traceparent,
            "user_agent": user_agent,
            "worker": self.worker_id,
        }
        self.writer.write(
            json_line(entry) if self._json else combined_line(entry, referer, request.http11)
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
            _request_id(request),
            flow.client_address(),
            (self._routes.get(plan) or self._route(plan))[0],
            reply.status,
            sent,
            round((now - flow.started) * 1000, 3) if flow.started else None,
            None,
            None,
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
            _request_id(request),
            client,
            None,
            status,
            body_bytes,
            None,
            None,
            None,
            None,
            None,
            kind.codemessage if kind is not None else None,
        )

    # -- building the line --------------------------------------------------------------------
    def _emit(
        self,
        request: Request | None,
        request_id: str | None,
        client: str,
        route: str | None,
        status: int,
        sent: int,
        duration_ms: float | None,
        upstream_ms: float | None,
        upstream: str | None,
        flow: Flow | None,
        rate_limit: str | None,
        cause: str | None,
    ) -> None:
        """The line of an answer the gateway made (``exchange_ended`` builds its own)."""
        traceparent = user_agent = referer = None
        method = path = None
        received = 0
        http11 = True
        if request is not None:
            method = request.method.decode("latin-1")
            target = request.target
            path = redact(target) if self._redact else target.decode("latin-1")
            received = request.body_size
            http11 = request.http11
            _client_trace, user_agent, referer = _headers(request.kept)
            # Nothing went upstream: the client's own traceparent, as it sent it.
            if request.traceparent:
                traceparent = request.traceparent.decode("latin-1")
        principal = flow.principal if flow is not None else None
        entry: Entry = {
            "time": time.time(),
            "request_id": request_id,
            "client": client,
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "bytes_in": received,
            "bytes_out": sent,
            "duration_ms": duration_ms,
            "upstream_ms": upstream_ms,
            "upstream": upstream,
            "sub": principal.subject if principal is not None else None,
            "rate_limit": rate_limit,
            "error": cause,
            "traceparent": traceparent,
            "user_agent": user_agent,
            "worker": self.worker_id,
        }
        self.writer.write(json_line(entry) if self._json else combined_line(entry, referer, http11))

    def _body_bytes(self, kind: errors.ErrorKind, request: Request | None) -> int:
        """The length of ``kind``'s envelope as sent (nothing for a HEAD request)."""
        if request is not None and request.method == b"HEAD":
            return 0
        size = self._bodies.get(kind)
        if size is None:
            size = len(errors.envelope(kind.code, kind.codemessage, kind.message))
            self._bodies[kind] = size
        return size

    def _route(self, plan: RoutePlan) -> tuple[str, tuple[int, ...]]:
        stages = plan.chain.stages
        limiters = tuple(i for i, s in enumerate(stages) if s.name == RATE_LIMIT_STAGE)
        if len(self._routes) >= MAX_REMEMBERED_PLANS:
            self._routes.clear()
        route = self._routes[plan] = (plan.route.spec.upstream_path, limiters)
        return route

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
                decision = "allowed"
            elif position == answered_at:
                kind = reply.kind
                codemessage = kind.codemessage if kind is not None else ""
                decision = _REFUSALS.get(codemessage, "limited")
        return decision


def _request_id(request: Request | None) -> str | None:
    """The id the gateway-made answer carried (the responder leaves it on the request)."""
    if request is None or request.request_id is None:
        return None
    return request.request_id.decode("latin-1")


def _headers(kept: list[bytes]) -> tuple[str | None, str | None, str | None]:
    """``traceparent``, ``User-Agent`` and ``Referer`` from the request's header lines, in
    one pass (a byte compare first: most lines are none of them)."""
    traceparent = user_agent = referer = None
    for line in kept:
        first = line[0] | 0x20
        if first == 0x74 and line[:12].lower() == b"traceparent:":
            traceparent = line[12:].strip().decode("latin-1")
        elif first == 0x75 and line[:11].lower() == b"user-agent:":
            user_agent = line[11:].strip().decode("latin-1")
        elif first == 0x72 and line[:8].lower() == b"referer:":
            referer = line[8:].strip().decode("latin-1")
    return traceparent, user_agent, referer
