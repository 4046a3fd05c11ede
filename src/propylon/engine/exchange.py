"""One proxied request: from the routing decision to the last byte of the response.

The exchange owns an upstream connection for its lifetime and streams in both directions:
request body chunks go upstream as they arrive, response chunks go to the client as they
arrive, each side pausing the other when its transport buffer fills (flow control), so a
10 MiB upload costs a few buffers of memory, not 10 MiB.

Failure rules (design.md s.4): before the client has seen a response head, any upstream fault
becomes a JSON error (502, or 504 for a timeout); after it, the client connection is cut, so a
truncated body is never passed off as a whole one.

A request may take several tries (``upstream/retry.py`` says which failures qualify): a try
that failed before any byte of an answer goes again, after a jittered backoff, on the host
the route's selector picks next, while the exchange, its client and its stats stay the same.
A try begins with an idle connection of the host's pool, else a new one if the pool's cap
allows, else a place in the pool's queue (``upstream/pool.py``).
"""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
from collections.abc import Callable
from http import HTTPStatus
from typing import Final, Protocol

from propylon import errors
from propylon.engine.client_limits import ClientLimits
from propylon.engine.fault_log import FaultLog
from propylon.engine.route_plan import RoutePlan
from propylon.engine.watchdog import RESOLUTION, Watchdog
from propylon.http.request import Request
from propylon.plane.stage import Flow, Reply
from propylon.policies.forwarding import RESPONSE_REWRITTEN, connection_tokens
from propylon.upstream.connection import ResponseSink, UpstreamConnection
from propylon.upstream.head import with_host
from propylon.upstream.pool import PoolWaiter, UpstreamPool
from propylon.upstream.retry import SENT, STALE, UNSENT

# A reused connection that ends like this before a byte of the answer was only stale.
STALE_FAULTS = frozenset({"closed", "reset"})
CLIENT_GONE = 499  # nginx's convention for "client closed the connection first"
# Final: compiled code reads a Final module value directly, any other through the module's
# dictionary.
STATUS_LINES: Final = {
    s.value: b"HTTP/1.1 %d %s" % (s.value, s.phrase.encode()) for s in HTTPStatus
}
_PLAIN_CONNECTION: Final = frozenset({b"keep-alive", b"close"})
MAX_LOWER_NAMES: Final = 256
_LOWER_NAMES: Final[dict[bytes, bytes]] = {}


def lowered_name(name: bytes) -> bytes:
    """A response header's name in lower case, remembered: upstreams send the same few
    names on every response, and a dictionary hit costs half of ``bytes.lower()`` called
    from compiled code (~350 instructions: a method looked up and called by name). The
    memo starts over at ``MAX_LOWER_NAMES``, so an upstream inventing names cannot grow
    it (the request side's ``HeaderRules.kind`` does the same for clients' names)."""
    lname = _LOWER_NAMES.get(name)
    if lname is None:
        if len(_LOWER_NAMES) >= MAX_LOWER_NAMES:
            _LOWER_NAMES.clear()
        lname = name.lower()
        _LOWER_NAMES[name] = lname
    return lname


class Downstream:
    """What an exchange needs of its client connection (the server's protocol implements
    it; this module never imports the server). A native base class, not a trait: compiled
    calls through it are a vtable index, and every proxied request makes several."""

    __slots__ = ("clock", "limits", "loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: ClientLimits,
        clock: Callable[[], float],
    ) -> None:
        self.loop = loop
        self.limits = limits
        self.clock = clock

    @property
    def draining(self) -> bool:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def cork(self) -> None:
        raise NotImplementedError

    def uncork(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def send_error(
        self,
        kind: errors.ErrorKind,
        request: Request | None,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        close: bool = False,
        stage_lines: list[bytes] | None = None,
    ) -> bool:
        """Answer with ``kind``'s envelope; returns whether the connection may be kept."""
        raise NotImplementedError

    def exchange_finished(self, exchange: Exchange | None, keep_alive: bool) -> None:
        raise NotImplementedError

    def pause_for_upstream(self) -> None:
        raise NotImplementedError

    def resume_for_upstream(self) -> None:
        raise NotImplementedError

    def body_buffered(self, size: int) -> None:
        raise NotImplementedError

    def body_flushed(self) -> None:
        raise NotImplementedError


class AccessSink(Protocol):
    """Where every request's end is told, when the access log is on (``propylon.logs``; a
    typing Protocol, not a native class: the log is interpreted code, imported only then).
    Exactly one call per request served."""

    def exchange_ended(self, exchange: Exchange, now: float) -> None:
        """A proxied request ended (answered, cut, failed upstream, or the client left)."""
        raise NotImplementedError

    def stage_answered(self, flow: Flow, plan: RoutePlan, reply: Reply, now: float) -> None:
        """A stage of the route answered instead of the upstream."""
        raise NotImplementedError

    def gateway_answered(
        self,
        peer: str,
        request: Request | None,
        status: int,
        kind: errors.ErrorKind | None,
        body_bytes: int,
    ) -> None:
        """The gateway answered before any route took the request (``kind``: its error;
        None for ``/stats``, whose body was ``body_bytes`` long)."""
        raise NotImplementedError


class ExchangeContext:
    """What every exchange of one worker shares: built once by the gateway."""

    __slots__ = ("access_log", "fault_log", "queue_timeout", "request_id_lower", "watchdog")

    def __init__(
        self,
        watchdog: Watchdog,
        fault_log: FaultLog,
        request_id_lower: bytes,
        queue_timeout: float = 5.0,
        access_log: AccessSink | None = None,
    ) -> None:
        self.watchdog = watchdog
        self.fault_log = fault_log
        self.request_id_lower = request_id_lower
        self.queue_timeout = queue_timeout
        """Seconds a try may wait in a host's queue for a connection."""
        self.access_log = access_log


class Exchange(ResponseSink, PoolWaiter):
    __slots__ = (
        "_last_activity",
        "_timeout",
        "body_ended",
        "body_sent",
        "bytes_in",
        "bytes_out",
        "chunked_out",
        "client",
        "context",
        "deadline",
        "done",
        "error",
        "fault",
        "flow",
        "head",
        "keep_alive",
        "kept",
        "loop",
        "plan",
        "pool",
        "queued_until",
        "request",
        "request_id_line",
        "response_started",
        "started",
        "status",
        "tried",
        "try_until",
        "upstream",
        "watchdog",
    )

    def __init__(
        self,
        client: Downstream,
        flow: Flow,
        plan: RoutePlan,
        pool: UpstreamPool,
        head: bytes,
        request_id_line: bytes,
        started: float,
        context: ExchangeContext,
    ) -> None:
        self.client = client
        self.flow = flow
        request = flow.request
        self.request = request
        self.context = context
        self.plan = plan
        self.pool = pool
        self.head = head
        self.request_id_line = request_id_line
        self.loop = client.loop
        self.started = started
        self.upstream: UpstreamConnection | None = None
        self.response_started = False
        self.chunked_out = False
        self.keep_alive = False
        self.done = False
        self.status = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.body_sent = 0
        """Request body bytes written upstream (not counting chunked framing)."""
        self.body_ended = False
        """The terminating chunk of a chunked request body was written upstream."""
        self.tried: list[UpstreamPool] | None = None
        """The hosts of the tries before the current one (None until the first retry)."""
        self.try_until = 0.0
        """When the current try's per-try timeout ends (0.0: it has none)."""
        self.queued_until = 0.0
        """When the current try stops waiting in its pool's queue (0.0: it does not wait)."""
        self.kept: list[bytes] | None = None
        """The body chunks written upstream in this try, kept for a replay (None: nothing
        is kept). Their size is ``body_sent``."""
        self.error: errors.ErrorKind | None = None
        """The error the gateway answered with instead of the upstream's response."""
        self.fault = ""
        """The upstream fault that ended the exchange (``timeout``, ``refused`` ...)."""
        self._timeout = plan.timeout
        self._last_activity = started
        self.watchdog = context.watchdog
        self.deadline = started + self._timeout
        if not request.complete:
            self.deadline = min(self.deadline, self._next_body_check(started))

    # -- start ------------------------------------------------------------------------------
    def start(self) -> None:
        """Begin the exchange with its first try on ``self.pool``: an idle connection, else
        a new one, else a place in the pool's queue."""
        plan = self.plan
        plan.stats.begin()
        self.watchdog.watch(self)
        if plan.prepares_tries:
            self._prepare_try()
        conn = self.pool.take_idle()
        if conn is not None:
            self._attach(conn)
        else:
            self._open()

    def _next_try(self) -> None:
        """A retry's backoff is over: the next try, as ``start`` begins the first."""
        if self.done:
            return
        if self.plan.prepares_tries:
            self._prepare_try()
        conn = self.pool.take_idle()
        if conn is not None:
            self._attach(conn)
        else:
            self._open()

    def _prepare_try(self) -> None:
        """What a try of a method the route retries after it was sent needs: its per-try
        deadline, and a copy of the body it writes (the same bytes objects, not copies),
        when the body is small enough to be replayed. Other tries need neither: they wait
        out the route's timeout, and are never replayed."""
        plan = self.plan
        retry = plan.retry
        request = self.request
        if retry is None or request.method not in retry.methods:
            return
        if plan.per_try_timeout > 0.0:
            self.try_until = self.watchdog.now + plan.per_try_timeout
            self.deadline = min(self.deadline, self.try_until)
        limit = plan.replay_limit
        if limit >= 0 and request.has_body and (request.content_length or 0) <= limit:
            self.kept = []

    def _open(self) -> None:
        """No idle connection: a new one if the pool's cap allows, else the queue."""
        pool = self.pool
        if pool.reserve():
            self.loop.create_task(self._connect(self._try_number()))
        elif pool.enqueue(self):
            now = self.watchdog.now
            self.queued_until = now + self.context.queue_timeout
            # Judged every tick while it waits: its host may be taken out meanwhile.
            self.deadline = min(self.deadline, now + RESOLUTION)
        else:
            pool.stats.queue_full += 1
            self._try_failed("busy", UNSENT)

    def pool_granted(self, conn: UpstreamConnection | None) -> None:
        self.queued_until = 0.0
        pool = self.pool
        if self._host_out(self.watchdog.now):
            # Taken out while this waited (the failure that freed the slot, often): what
            # it was given goes to the next in line, and this try to another host.
            if conn is not None:
                pool.release(conn)
            else:
                pool.unreserve()
            self._try_failed("out", UNSENT)
            return
        if conn is not None:
            self._attach(conn)
        else:
            self.loop.create_task(self._connect(self._try_number()))

    async def _connect(self, attempt: int) -> None:
        pool = self.pool
        try:
            conn = await pool.connect()
        except TimeoutError:
            self._connect_failed(attempt, "timeout")
            return
        except socket.gaierror:
            self._connect_failed(attempt, "dns")
            return
        except ssl.SSLError:
            self._connect_failed(attempt, "tls")
            return
        except ConnectionRefusedError:
            self._connect_failed(attempt, "refused")
            return
        except OSError:
            self._connect_failed(attempt, "unreachable")
            return
        if self.done or attempt != self._try_number():
            # The exchange ended, or gave this try up (per-try timeout) while it connected.
            pool.release(conn)
            return
        self._attach(conn)

    def _connect_failed(self, attempt: int, kind: str) -> None:
        if not self.done and attempt == self._try_number():
            self._try_failed(kind, UNSENT)

    def _attach(self, conn: UpstreamConnection) -> None:
        self.upstream = conn
        self.pool.stats.request()
        request = self.request
        conn.begin(self, request.method == b"HEAD")
        conn.write(self.head)
        if request.body:
            for chunk in request.body:
                self._send_body(conn, chunk)
            request.body = []
            self.client.body_flushed()
        if request.complete and request.chunked:
            conn.write(b"0\r\n\r\n")
            self.body_ended = True

    # -- request body (from the client) -------------------------------------------------------
    def request_body(self, chunk: bytes) -> None:
        self.bytes_in += len(chunk)
        self._last_activity = self.watchdog.now
        conn = self.upstream
        if conn is None:
            self.request.body.append(chunk)
            self.client.body_buffered(len(chunk))
        else:
            self._send_body(conn, chunk)

    def _send_body(self, conn: UpstreamConnection, chunk: bytes) -> None:
        self.body_sent += len(chunk)
        kept = self.kept
        if kept is not None:
            if self.body_sent > self.plan.replay_limit:
                self.kept = None  # a streamed upload: never sent twice
            else:
                kept.append(chunk)
        if self.request.chunked:
            conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            conn.write(chunk)

    def request_complete(self) -> None:
        conn = self.upstream
        if conn is not None and self.request.chunked:
            conn.write(b"0\r\n\r\n")
            self.body_ended = True

    def _request_sent_whole(self) -> bool:
        """Whether the upstream received exactly the request body its head announced.

        The pool invariant rests on this: a connection goes back to the pool only after the
        gateway wrote exactly the body it announced and read exactly one complete response.
        A connection on which fewer bytes went out than announced would take the next
        request's head as the rest of this body, so anything else closes it.
        """
        request = self.request
        if not request.complete:
            return False
        if request.chunked:
            return self.body_ended
        return self.body_sent == (request.content_length or 0)

    # -- response (from the upstream) -----------------------------------------------------------
    def upstream_head(
        self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool
    ) -> bool:
        if self.done:
            return True
        self._last_activity = self.watchdog.now
        chain = self.plan.chain
        if chain.response_stages:
            chain.response_head(self.flow, status, headers)
        request = self.request
        client = self.client
        # The standard reason phrase, not the upstream's: clients ignore it (RFC 9112 s.4),
        # and not asking llhttp for it saves a callback per response.
        out = [STATUS_LINES.get(status) or b"HTTP/1.1 %d -" % status]
        length: bytes | None = None
        chunked = False
        listed: list[bytes] | None = None
        rid = self.context.request_id_lower
        for name, value in headers:
            lname = lowered_name(name)
            if lname in RESPONSE_REWRITTEN:
                if lname == b"content-length":
                    length = value.strip()
                elif lname == b"transfer-encoding":
                    chunked = value.rstrip().lower().endswith(b"chunked")
                elif (
                    lname == b"connection"
                    and value not in _PLAIN_CONNECTION
                    and value.lower() not in _PLAIN_CONNECTION
                ):
                    # Almost every response says just keep-alive or close (as is, most
                    # often: no lower() call): no names listed.
                    listed = listed or []
                    listed.append(value)
                continue
            if lname == rid:
                continue
            out.append(name + b": " + value)
        if listed:
            drop = connection_tokens(listed)
            if drop:
                out = [out[0]] + [h for h in out[1:] if h.split(b":", 1)[0].lower() not in drop]
        out.append(self.request_id_line)
        stage_lines = self.flow.response_lines
        if stage_lines is not None:
            out.extend(stage_lines)
        no_body = request.method == b"HEAD" or status in (204, 304)
        keep = request.keep_alive and request.complete and not client.draining
        if no_body:
            if length is not None and status != 204:
                out.append(b"Content-Length: " + length)
        elif length is not None:
            out.append(b"Content-Length: " + length)
        elif request.http11:
            out.append(b"Transfer-Encoding: chunked")
            self.chunked_out = True
        else:
            keep = False  # an HTTP/1.0 client learns where the body ends from the close
        if not keep:
            out.append(b"Connection: close")
        elif not request.http11:
            out.append(b"Connection: keep-alive")
        out.append(b"\r\n")
        self.keep_alive = keep
        self.status = status
        self.response_started = True
        client.write(b"\r\n".join(out))
        return no_body or chunked or length is not None

    def upstream_body(self, chunk: bytes) -> None:
        if self.done:
            return
        self.bytes_out += len(chunk)
        self._last_activity = self.watchdog.now
        if self.chunked_out:
            self.client.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.client.write(chunk)

    def upstream_complete(self, keep_alive: bool) -> None:
        if self.done:
            return
        conn, self.upstream = self.upstream, None
        if self.chunked_out:
            self.client.write(b"0\r\n\r\n")
        if conn is not None:
            if keep_alive and self._request_sent_whole():
                self.pool.release(conn)
            else:
                conn.close()
        # The host answered in full: a 5xx counts against it, anything else clears its
        # failures (one attribute read when there were none).
        health = self.pool.health
        if self.status >= 500:
            health.failed("5xx", self.loop.time())
        elif health.failures:
            health.succeeded()
        self._finish(self.keep_alive)

    def upstream_failed(self, kind: str) -> None:
        if self.done:
            return
        conn, self.upstream = self.upstream, None
        if conn is not None and not conn.answered and not self.response_started:
            # Not one byte of an answer: a try that may go again. (A malformed answer, or
            # a 101, came with bytes: never retried.)
            self._try_failed(kind, STALE if conn.reused and kind in STALE_FAULTS else SENT)
            return
        if self.response_started:
            self._record_fault(kind)
            self._abort_client()
        else:
            self._fail_before_response(kind)

    def upstream_pause_writing(self) -> None:
        self.client.pause_for_upstream()

    def upstream_resume_writing(self) -> None:
        self.client.resume_for_upstream()

    def cork_client(self) -> None:
        self.client.cork()

    def uncork_client(self) -> None:
        self.client.uncork()

    # -- client-side events -------------------------------------------------------------------
    def client_pause_writing(self) -> None:
        conn = self.upstream
        if conn is not None and conn.transport is not None:
            conn.transport.pause_reading()

    def client_resume_writing(self) -> None:
        conn = self.upstream
        if conn is not None and conn.transport is not None:
            conn.transport.resume_reading()

    # -- tries ----------------------------------------------------------------------------------
    def _try_failed(self, kind: str, failure: int) -> None:
        """The current try failed before any byte of an answer: another, or the error."""
        if self._retry(kind, failure):
            return
        if kind == "busy":
            self._error(errors.UPSTREAM_BUSY)
        elif kind == "out":
            self._error(errors.NO_UPSTREAM)
        else:
            self._fail_before_response(kind)

    def _retry(self, kind: str, failure: int) -> bool:
        """Start the next try if the route's policy, the body and the budget allow one."""
        plan = self.plan
        retry = plan.retry
        request = self.request
        if (
            retry is None
            or self._try_number() >= retry.attempts
            or not retry.qualifies(failure, request.method, request.has_body)
        ):
            return False
        # Unsent, the body is still in ``request.body``; sent, only a kept copy can go again.
        replay = failure != UNSENT and request.has_body
        if replay and self.kept is None:
            return False
        tried = self.pool
        selector = plan.selector
        earlier = self.tried
        pool = selector.pick_again(self.flow, tried, earlier or ())
        if pool is None:
            return False
        # A host that could not be reached, or had no connection to spare, is no better a
        # moment later: those go to another host or not at all. A stale or a sent try may
        # go to the same host (on a fresh connection) when it is the only one.
        refused = failure == UNSENT and pool is tried
        # The budget bounds the work retries add to the services: a try that never reached
        # one (refused, no connection to spare) added none, so its retry spends nothing
        # (``attempts`` still bounds it). Otherwise the first burst of a gateway whose one
        # host refuses from the start would outrun what the bucket holds.
        if refused or (failure != UNSENT and not retry.budget.withdraw(plan.stats.requests)):
            if not refused:
                plan.stats.retries_refused += 1
            if plan.tracking:
                selector.release(pool)
            return False
        if failure == SENT or (failure == UNSENT and kind not in ("busy", "out")):
            # The failed try counts against its host (a stale connection, a full queue
            # or a host already out say nothing new about it).
            self._host_fault(kind)
        if plan.tracking:
            selector.release(tried)
        if earlier is None:
            self.tried = [tried]
        else:
            earlier.append(tried)
        if replay:
            kept = self.kept
            assert kept is not None
            kept.extend(request.body)
            request.body = kept
        self.kept = None
        self.body_sent = 0
        self.body_ended = False
        plan.stats.retries += 1
        if pool.host_header != tried.host_header:
            self.head = with_host(self.head, tried.host_header, pool.host_header)
        self.pool = pool
        self.try_until = 0.0
        delay = retry.delay(self._try_number() - 1)
        if delay > 0.0:
            self.loop.call_later(delay, self._next_try)
        else:
            self.loop.call_soon(self._next_try)
        return True

    def _try_number(self) -> int:
        """1 for the first try, 2 for the first retry, ..."""
        tried = self.tried
        return 1 if tried is None else len(tried) + 1

    def _host_out(self, now: float) -> bool:
        """Whether the current try's host is out of this route now, as its selector judges:
        a route's only host is out only when its active checks say so (``Only``)."""
        health = self.pool.health
        if len(self.plan.selector.pools) == 1:
            return health.checked_down
        return not health.available(now)

    def _leave_queue(self) -> None:
        self.queued_until = 0.0
        self.pool.leave(self)

    def client_gone(self) -> None:
        if self.done:
            return
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        if not self.response_started:
            self.status = CLIENT_GONE
        self._finish(False, notify_client=False)

    def too_large(self) -> None:
        """The client's body passed the limit while it was streaming upstream."""
        if self.done:
            return
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        if self.response_started:
            self._abort_client()
        else:
            self._error(errors.PAYLOAD_TOO_LARGE)

    # -- endings --------------------------------------------------------------------------------
    def _next_body_check(self, now: float) -> float:
        """When the request body must next be judged, or 0.0 when it is too slow already:
        it must arrive whole within ``body_timeout`` of the head, and once
        ``body_rate_grace`` has passed, average at least ``min_body_rate`` bytes per second.
        (Each body byte counts as activity for the route timeout, so without these a client
        trickling a byte now and then would hold this exchange and its upstream connection
        for ever.)"""
        limits = self.client.limits
        elapsed = now - self.started
        if elapsed >= limits.body_timeout:
            return 0.0
        rate = limits.min_body_rate
        if rate > 0.0 and elapsed >= limits.body_rate_grace:
            if self.request.body_size < rate * elapsed:
                return 0.0
            return min(now + 1.0, self.started + limits.body_timeout)
        grace_over = self.started + limits.body_rate_grace if rate > 0.0 else math.inf
        return min(grace_over, self.started + limits.body_timeout)

    def expire(self, now: float) -> None:
        """The watchdog's call: the route timeout passed with nothing moving in either
        direction, or the request body is due to be judged."""
        if self.done:
            return
        queued = self.queued_until != 0.0
        if queued:
            if now >= self.queued_until:
                self._leave_queue()
                self.pool.stats.queue_timeouts += 1
                self._try_failed("busy", UNSENT)
                return
            if self._host_out(now):
                self._leave_queue()
                self._try_failed("out", UNSENT)
                return
        if self.try_until != 0.0 and now >= self.try_until and not self.response_started:
            self.try_until = 0.0
            conn, self.upstream = self.upstream, None
            if queued:
                self._leave_queue()
            if conn is not None:
                conn.abort()
            self._try_failed("timeout", SENT if conn is not None else UNSENT)
            return
        body_check = math.inf
        if not self.request.complete:
            body_check = self._next_body_check(now)
            if body_check == 0.0:
                self._body_too_slow()
                return
        idle_until = self._last_activity + self._timeout
        if now < idle_until:
            deadline = min(idle_until, body_check)
            if self.try_until != 0.0 and not self.response_started:
                deadline = min(deadline, self.try_until)
            if queued:
                deadline = min(deadline, now + RESOLUTION)
            self.deadline = deadline
            return
        if queued:
            self._leave_queue()
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        if self.response_started:
            self._record_fault("timeout")
            self._abort_client()
        elif not self.request.complete:
            # The client stopped sending its body: that is the client's timeout, not the
            # upstream's.
            self._body_too_slow()
        else:
            self._fail_before_response("timeout")

    def _body_too_slow(self) -> None:
        """408 (or, once the response began, a cut connection) and the upstream closed:
        neither side waits on this client any longer. The client connection closes too."""
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        if self.response_started:
            self._abort_client()
            return
        self.status = errors.REQUEST_TIMEOUT.status
        self.error = errors.REQUEST_TIMEOUT
        self.client.send_error(
            errors.REQUEST_TIMEOUT, self.request, close=True, stage_lines=self.flow.response_lines
        )
        self._finish(False)

    def _fail_before_response(self, kind: str) -> None:
        if self.done:
            return
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        self._record_fault(kind)
        if kind == "timeout":
            self._error(errors.UPSTREAM_TIMEOUT)
        else:
            self._error(
                errors.BAD_UPSTREAM_RESPONSE if kind == "malformed" else errors.UPSTREAM_UNAVAILABLE
            )

    def _record_fault(self, kind: str) -> None:
        """Count an upstream fault (route and upstream) and log it: once per fault."""
        self.fault = kind
        if kind == "timeout":
            self.plan.stats.upstream_timeout()
        else:
            self.plan.stats.upstream_error()
        self._host_fault(kind)

    def _host_fault(self, kind: str) -> None:
        """A try's fault, on its host: counted, fed to passive health, logged."""
        self.pool.stats.error(kind)
        self.pool.health.failed(kind, self.loop.time())
        self.context.fault_log.report(self.plan.stats.label, self.pool.key, kind)
        trace = self.flow.trace
        if trace is not None:
            trace.upstream_failed(kind)

    def _error(self, kind: errors.ErrorKind) -> None:
        self.status = kind.status
        self.error = kind
        keep = self.client.send_error(kind, self.request, stage_lines=self.flow.response_lines)
        self._finish(keep)

    def _abort_client(self) -> None:
        self._finish(False, notify_client=False)
        self.client.abort()

    def _finish(self, keep_alive: bool, *, notify_client: bool = True) -> None:
        self.done = True
        self.watchdog.unwatch(self)
        if self.queued_until != 0.0:
            self._leave_queue()
        now = self.client.clock()
        plan = self.plan
        plan.stats.end(self.status, now - self.started, self.bytes_in, self.bytes_out)
        if plan.tracking:
            plan.selector.release(self.pool)
        chain = plan.chain
        if chain.response_stages:
            flow = self.flow
            chain.ended(flow, self.status, now - flow.started)
        trace = self.flow.trace
        if trace is not None:
            pool = self.pool
            answered = self.status if self.response_started else 0
            trace.exchange_ended(self.status, answered, pool.host, pool.port)
        access_log = self.context.access_log
        if access_log is not None:
            access_log.exchange_ended(self, now)
        if notify_client:
            self.client.exchange_finished(self, keep_alive)
