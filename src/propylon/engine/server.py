"""Server side of the data plane: one protocol instance per client connection.

httptools (llhttp) parses; this class enforces the limits llhttp does not (head size, header
count, URL length, body size, the header-read deadline), serves requests strictly one at a
time in arrival order (pipelined requests queue, with reading paused), and hands each request
to the gateway's decision code, then to an ``Exchange``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools

from propylon import errors
from propylon.engine.client_limits import ClientLimits
from propylon.engine.exchange import AccessSink, Downstream, Exchange
from propylon.engine.responder import CONTINUE, Responder
from propylon.engine.watchdog import NEVER, Watchdog
from propylon.http.request import HeaderError, HeaderRules, Request, sort_headers
from propylon.plane.stage import Reply
from propylon.stats import GatewayStats
from propylon.upstream.head import forwarding_lines

log = logging.getLogger("propylon.engine")

# Body bytes held for an exchange that has no upstream connection yet (it is connecting, or
# a JWKS refresh is pending) before reading from the client pauses.
BUFFER_HIGH_WATER = 256 * 1024
# After a gateway-made answer, at most this much of an unread request body is read and
# dropped to keep the connection; with more to come, the connection closes instead.
DISCARD_LIMIT = 64 * 1024


class Handler:
    """What a client connection needs of the worker serving it (the gateway implements it;
    this module never imports the gateway). A native base class rather than a trait: the
    connection reads these for every request, and a trait's attributes cost a search."""

    loop: asyncio.AbstractEventLoop
    client_limits: ClientLimits
    header_rules: HeaderRules
    watchdog: Watchdog
    stats: GatewayStats
    responder: Responder
    connections: set[ClientConnection]
    draining: bool
    drained: asyncio.Event
    access_log: AccessSink | None

    def decide(self, conn: ClientConnection, request: Request) -> errors.ErrorKind | None:
        """Serve ``request`` or name why not (None: it is being served, or was answered)."""
        raise NotImplementedError


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing; the kind is kept on the protocol."""


class ClientConnection(Downstream):
    PAUSE_PIPELINE = 1
    PAUSE_UPSTREAM = 2
    PAUSE_BUFFER = 4

    __slots__ = (
        "_active",
        "_buffered",
        "_closed",
        "_corked",
        "_deferred",
        "_feed",
        "_head_bytes",
        "_header_bytes",
        "_headers",
        "_http_version",
        "_in_head",
        "_keep_alive",
        "_method",
        "_parsing",
        "_paused",
        "_queue",
        "_reject",
        "_should_upgrade",
        "_url",
        "_write",
        "deadline",
        "exchange",
        "forwarding_lines",
        "gateway",
        "local_port",
        "parser",
        "peer",
        "responder",
        "scheme",
        "transport",
    )

    def __init__(self, gateway: Handler, scheme: bytes = b"http") -> None:
        loop = gateway.loop
        # The loop's clock, bound once (exchanges on this connection use it too).
        super().__init__(loop, gateway.client_limits, loop.time)
        self.gateway = gateway
        self.responder = gateway.responder
        self.scheme = scheme
        """How the client reached us: ``https`` on the TLS listener (engine/listeners.py)."""
        self.parser = httptools.HttpRequestParser(self)
        # Bound once: looking a method up on an extension object is a measurable part of a
        # request's cost once the rest is compiled, and these run for every request.
        self._feed: Callable[[bytes], None] = self.parser.feed_data
        self._method: Callable[[], bytes] = self.parser.get_method
        self._http_version: Callable[[], str] = self.parser.get_http_version
        self._keep_alive: Callable[[], bool] = self.parser.should_keep_alive
        self._should_upgrade: Callable[[], bool] = self.parser.should_upgrade
        self._write: Callable[[bytes], object] | None = None
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.forwarding_lines = b""
        self.local_port = 0
        """``X-Forwarded-*`` and ``X-Real-IP`` as the gateway states them for this client."""
        self.exchange: Exchange | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        """Raw bytes read since the head began (from the start of that read): bounds a head
        that never ends."""
        self._header_bytes = 0
        """The header lines' bytes, for ``limits.max_header_bytes``: counted apart, so that
        how the head was cut into reads does not change which heads fit."""
        self._in_head = False
        self._parsing: Request | None = None
        self._active: Request | None = None
        self._queue: deque[Request] = deque()
        self._paused = 0
        self._buffered = 0
        self._reject: errors.ErrorKind | None = None
        self._deferred: errors.ErrorKind | None = None
        """A pipelined request behind the one in flight was unusable: answered with this,
        and the connection closed, once the requests before it are done."""
        self._closed = False
        self._corked: list[bytes] | None = None
        self.deadline = NEVER
        """Header deadline while a head is being read, keep-alive deadline while idle."""

    @property
    def draining(self) -> bool:
        return self.gateway.draining

    def gone(self) -> bool:
        return self._closed or self.transport is None or self.transport.is_closing()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._write = self.transport.write
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else "unix"
        local = transport.get_extra_info("sockname")
        self.local_port = int(local[1]) if isinstance(local, tuple) else 0
        self.forwarding_lines = forwarding_lines(self.peer, self.local_port, self.scheme)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.gateway.connections.add(self)
        self.gateway.watchdog.watch(self)
        self.deadline = self.clock() + self.limits.header_timeout

    def data_received(self, data: bytes) -> None:
        if self._closed or self._deferred is not None:
            return
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade as upgrade:
            # Protocol upgrades (WebSocket, h2c) are not tunnelled: a bodiless upgrade request
            # is served as plain HTTP without its Upgrade header (on_headers_complete refused
            # every other kind), and parsing resumes right after its head.
            offset = int(upgrade.args[0]) if upgrade.args else len(data)
            if offset < len(data):
                self.data_received(data[offset:])
            return
        except (httptools.HttpParserError, _Reject) as exc:
            if self._reject is None and isinstance(exc, httptools.HttpParserCallbackError):
                log.exception("parser callback failed", exc_info=exc.__context__)
                kind = errors.INTERNAL
            else:
                kind = self._reject or errors.BAD_REQUEST
            self._protocol_error(kind)
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes + self.limits.max_url_bytes:
                self._protocol_error(errors.HEADERS_TOO_LARGE)
            elif self._http09(data):
                self._protocol_error(errors.BAD_REQUEST)

    def _http09(self, data: bytes) -> bool:
        """Whether the head read so far begins with a request line without a version.

        llhttp takes such a line as HTTP/0.9 and goes on reading header lines, so a real 0.9
        client (``GET /x`` and one line end, then it waits) would never reach
        on_headers_complete, and would get a 408 at the header deadline. Asked only when a
        read ends inside a head: a head read whole costs nothing more.

        llhttp records the version 0.9 only on the byte after that line's end; until then it
        reports the version of the connection's previous request (0.0 before the first). So
        for a read that ends a line: with no version parsed yet on this connection, the line
        can only be a version-less request line; after one, the head is one when it is too
        short to hold its method and target with a version (`` HTTP/1.1`` and a line end).
        ``_head_bytes`` counts from the start of the read in which the head began: a head
        that began behind another request in one read is overcounted and gets the 408
        instead (it never reaches an upstream either way).
        """
        version = self._http_version()
        if version == "0.9":
            return True
        if not data.endswith(b"\n"):
            return False
        if version == "0.0":
            return True
        return self._head_bytes < len(self._method()) + len(self._url) + 11

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        gateway = self.gateway
        gateway.watchdog.unwatch(self)
        gateway.connections.discard(self)
        if gateway.draining and not gateway.connections:
            gateway.drained.set()
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.client_gone()

    def eof_received(self) -> bool | None:
        # The client half-closed: close our side too (asyncio.Protocol's default).
        return None

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client_pause_writing()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client_resume_writing()

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._header_bytes = 0
        self._in_head = True
        if self._active is None:
            self.deadline = self.clock() + self.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_url_bytes:
            self._reject = errors.URI_TOO_LONG
            raise _Reject

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        headers.append((name, value))
        self._header_bytes += len(name) + len(value) + 4
        limits = self.limits
        if len(headers) > limits.max_headers or self._header_bytes > limits.max_header_bytes:
            self._reject = errors.HEADERS_TOO_LARGE
            raise _Reject

    def on_headers_complete(self) -> None:
        self._in_head = False
        self.deadline = NEVER
        version = self._http_version()
        http11 = version == "1.1"
        if not http11 and version != "1.0":
            # HTTP/0.9 (a request line without a version) has no headers, so no Host and no
            # framing; 2.0 and later do not speak this syntax. Nothing is sent upstream.
            self._reject = errors.BAD_REQUEST
            raise _Reject
        request = Request(self._method(), self._url, http11, self._keep_alive())
        # The request being parsed from here on: a refusal below concerns this one, not
        # the one before it (which may be queued and fine).
        self._parsing = request
        try:
            sort_headers(request, self._headers, self.gateway.header_rules)
        except HeaderError:
            self._reject = errors.BAD_REQUEST
            raise _Reject from None
        if (request.upgrade or request.method == b"CONNECT") and self._should_upgrade():
            # llhttp ends this message at its head, whatever body length it announces, and
            # would parse the body as the next request. Forwarding the announced length
            # would leave the upstream connection waiting for bytes that the next request's
            # head then supplies (request smuggling). So: CONNECT is refused and closes the
            # connection; an upgrade request is served as plain HTTP only when it has no
            # body; with one, it is refused, and the connection closed.
            if request.method == b"CONNECT":
                self._reject = errors.METHOD_NOT_IMPLEMENTED
                raise _Reject
            if request.has_body:
                self._reject = errors.UPGRADE_NOT_IMPLEMENTED
                raise _Reject
        if request.content_length is not None and request.content_length > (
            self.limits.max_body_bytes
        ):
            # Answered 413 when its turn comes; meanwhile (it may be queued behind another
            # request) its body is not worth buffering.
            request.discard = True
            request.discard_limit = DISCARD_LIMIT
        if self._active is None:
            self._active = request
            self._serve(request)
        else:
            self._queue.append(request)
            self.pause_reading(self.PAUSE_PIPELINE)

    def on_body(self, body: bytes) -> None:
        request = self._parsing
        if request is None:
            return
        request.body_size += len(body)
        if request.discard:
            if request.body_size > request.discard_limit:
                if request is self._active or request in self._queue:
                    # Not answered yet (a queued request that announced too large a body).
                    self._reject = errors.PAYLOAD_TOO_LARGE
                else:
                    self._close()  # answered already; the rest is not worth reading
                raise _Reject
            return
        exchange = self.exchange
        if request.body_size > self.limits.max_body_bytes:
            if exchange is not None and exchange.request is request:
                exchange.too_large()
            elif request is self._active:
                self._finish_with_error(errors.PAYLOAD_TOO_LARGE, request)
            self._reject = errors.PAYLOAD_TOO_LARGE
            raise _Reject
        if exchange is not None and exchange.request is request:
            exchange.request_body(body)
        elif request is self._active or len(self._queue) <= 1:
            request.body.append(body)
            self.body_buffered(len(body))
        else:
            request.body.append(body)

    def on_message_complete(self) -> None:
        request = self._parsing
        if request is None:
            return
        request.complete = True
        exchange = self.exchange
        if exchange is not None and exchange.request is request:
            exchange.request_complete()

    # -- serving ----------------------------------------------------------------------------
    def _serve(self, request: Request) -> None:
        gateway = self.gateway
        gateway.stats.request_seen()
        if request.content_length is not None and request.content_length > (
            self.limits.max_body_bytes
        ):
            self._finish_with_error(errors.PAYLOAD_TOO_LARGE, request)
            return
        decision = gateway.decide(self, request)
        if decision is not None:
            self._finish_with_error(decision, request)

    def proceed(self, exchange: Exchange) -> None:
        """The gateway accepted the request: start streaming it upstream."""
        request = exchange.request
        if request.expect_continue and not request.complete and request.has_body:
            self.write(CONTINUE)
        self.exchange = exchange
        exchange.start()

    def _finish_with_error(
        self,
        kind: errors.ErrorKind,
        request: Request,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        keep = self.send_error(kind, request, extra_headers)
        self._unrouted(kind, request)  # after: the answer chose the request id it logs
        self.exchange_finished(None, keep)

    def send_error(
        self,
        kind: errors.ErrorKind,
        request: Request | None,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        close: bool = False,
        stage_lines: list[bytes] | None = None,
    ) -> bool:
        """Write a JSON error response; returns whether the connection may be kept."""
        keep = not close and request is not None and self._may_keep(request)
        self.write(
            self.responder.error(
                kind, request, keep_alive=keep, headers=headers, stage_lines=stage_lines
            )
        )
        return keep

    def _may_keep(self, request: Request) -> bool:
        """Whether the connection can serve another request after a gateway-made answer.

        It can when the request's body is read (or there is none); when what remains of it
        is small, it is read and dropped rather than paying the client a new connection.
        Otherwise the connection closes: reading an unbounded body for nothing is a gift
        to a slow client.
        """
        if not request.keep_alive or self.draining:
            return False
        if request.complete or not request.has_body:
            return True
        if request.expect_continue:
            # The client waits for 100 Continue and may never send the body: whether its
            # next bytes are that body or its next request is anyone's guess.
            return False
        length = request.content_length
        if length is not None and length - request.body_size > DISCARD_LIMIT:
            return False
        if not request.discard:
            request.discard = True
            request.discard_limit = request.body_size + DISCARD_LIMIT
        request.body = []
        return True

    def send_json(self, request: Request, status: int, body: bytes) -> None:
        keep = self._may_keep(request)
        self.write(self.responder.json(request, status, body, keep_alive=keep))
        access_log = self.gateway.access_log
        if access_log is not None:
            sent = 0 if request.method == b"HEAD" else len(body)
            access_log.gateway_answered(self.peer, request, status, None, sent)
        self.exchange_finished(None, keep)

    def send_reply(self, reply: Reply, request: Request, stage_lines: list[bytes] | None) -> bool:
        """Write a stage's answer; returns whether the connection may be kept."""
        keep = self._may_keep(request)
        self.write(self.responder.reply(reply, request, keep_alive=keep, stage_lines=stage_lines))
        return keep

    def exchange_finished(self, exchange: Exchange | None, keep_alive: bool) -> None:
        self.exchange = None
        self._active = None
        if self._closed:
            return
        if not keep_alive or self.draining:
            self._close()
            return
        if self._queue:
            self.loop.call_soon(self._serve_next)
            return
        if self._deferred is not None:
            self._unrouted(self._deferred, None)
            self.write(self.responder.error(self._deferred, None, keep_alive=False))
            self._close()
            return
        self.resume_reading(self.PAUSE_PIPELINE)
        if self._in_head:
            self.deadline = self.clock() + self.limits.header_timeout
        else:
            self.deadline = self.clock() + self.limits.keepalive_timeout

    def _serve_next(self) -> None:
        if self._closed or self._active is not None or not self._queue:
            return
        request = self._queue.popleft()
        if not self._queue:
            self.resume_reading(self.PAUSE_PIPELINE)
        self._active = request
        self._serve(request)

    # -- plumbing used by exchanges -------------------------------------------------------------
    def pause_for_upstream(self) -> None:
        self.pause_reading(self.PAUSE_UPSTREAM)

    def resume_for_upstream(self) -> None:
        self.resume_reading(self.PAUSE_UPSTREAM)

    def write(self, data: bytes) -> None:
        corked = self._corked
        if corked is not None:
            corked.append(data)
            return
        write = self._write
        if write is not None and not self._closed:
            write(data)

    def cork(self) -> None:
        """Collect writes until ``uncork``: one send() for a response head and its body."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> None:
        corked, self._corked = self._corked, None
        if corked:
            self.write(corked[0] if len(corked) == 1 else b"".join(corked))

    def abort(self) -> None:
        self._closed = True
        self._corked = None
        if self.transport is not None:
            self.transport.abort()

    def body_buffered(self, size: int) -> None:
        self._buffered += size
        if self._buffered > BUFFER_HIGH_WATER:
            self.pause_reading(self.PAUSE_BUFFER)

    def body_flushed(self) -> None:
        self._buffered = 0
        self.resume_reading(self.PAUSE_BUFFER)

    def pause_reading(self, reason: int) -> None:
        if not self._paused and self.transport is not None and not self._closed:
            self.transport.pause_reading()
        self._paused |= reason

    def resume_reading(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and self.transport is not None and not self._closed:
            self.transport.resume_reading()

    def close_if_idle(self) -> None:
        """Used when draining: connections between requests close now."""
        if self._active is None and not self._in_head:
            self._close()

    # -- endings --------------------------------------------------------------------------------
    def _protocol_error(self, kind: errors.ErrorKind) -> None:
        """The byte stream is unusable: answer if we still can, then close."""
        if self._closed:
            return
        active = self._active
        if active is not None and (self._in_head or self._parsing is not active or active.complete):
            # The stream broke in a request pipelined behind the one in flight: that one
            # (and any complete ones queued before the broken one) are still served, then
            # this one is answered and the connection closed. Nothing more is read.
            if self._queue and self._queue[-1] is self._parsing:
                self._queue.pop()
            self._deferred = kind
            self.pause_reading(self.PAUSE_PIPELINE)
            return
        exchange = self.exchange
        if exchange is not None and exchange.response_started:
            self.abort()
            return
        if exchange is not None:
            exchange.client_gone()
            self.exchange = None
        if self._active is None or self._active is self._parsing or exchange is not None:
            self._unrouted(kind, None)
            self.write(self.responder.error(kind, None, keep_alive=False))
        self._close()

    def _unrouted(self, kind: errors.ErrorKind, request: Request | None) -> None:
        """Count (and log, with the access log on) an answer made before any route."""
        gateway = self.gateway
        gateway.stats.unrouted(kind.status)
        access_log = gateway.access_log
        if access_log is not None:
            access_log.gateway_answered(self.peer, request, kind.status, kind, 0)

    def expire(self, now: float) -> None:
        """The watchdog's call: a head took too long, or a keep-alive connection sat idle."""
        self.deadline = NEVER
        if self._active is not None or self._closed:
            return
        if self._in_head:
            self._unrouted(errors.REQUEST_TIMEOUT, None)
            self.write(self.responder.error(errors.REQUEST_TIMEOUT, None, keep_alive=False))
        self._close()

    def _close(self) -> None:
        if self._corked:
            self.uncork()
        self._closed = True
        if self.transport is not None:
            self.transport.close()
