"""Client side of the data plane: one keep-alive connection to a downstream host.

A connection belongs to at most one exchange at a time (its ``sink``); between exchanges it
sits in its pool's idle list. Responses are parsed with httptools (llhttp) and handed to the
sink piece by piece, so bodies stream instead of being buffered. The sink and the pool are
traits: this module knows neither the engine's exchange nor the pool's class.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

import httptools
from mypy_extensions import trait


class ResponseSink:
    """Who receives what a connection reads: the engine's exchange. (A native base class,
    not a trait: compiled calls through it are a vtable index, and a proxied response makes
    several.)"""

    def upstream_head(
        self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool
    ) -> bool:
        """The final response head; returns whether the body's end is framed (not by close)."""
        raise NotImplementedError

    def upstream_body(self, chunk: bytes) -> None:
        raise NotImplementedError

    def upstream_complete(self, keep_alive: bool) -> None:
        raise NotImplementedError

    def upstream_failed(self, kind: str) -> None:
        raise NotImplementedError

    def upstream_pause_writing(self) -> None:
        raise NotImplementedError

    def upstream_resume_writing(self) -> None:
        raise NotImplementedError

    def cork_client(self) -> None:
        """Collect what the client is sent until ``uncork_client``: one send() per read."""
        raise NotImplementedError

    def uncork_client(self) -> None:
        raise NotImplementedError


@trait
class ConnectionOwner:
    """The pool a connection belongs to."""

    def forget(self, conn: UpstreamConnection) -> None:
        """``conn`` closed: it must leave the idle list."""
        raise NotImplementedError


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_body_framed",
        "_feed",
        "_headers",
        "_headers_done",
        "_in_final",
        "_keep_alive",
        "_parser",
        "_status",
        "_write",
        "answered",
        "broken",
        "complete",
        "counted",
        "head_request",
        "idle_since",
        "pool",
        "reused",
        "sink",
        "transport",
    )

    def __init__(self, pool: ConnectionOwner) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.sink: ResponseSink | None = None
        """The exchange this connection serves; None while idle. (A mypyc trait, so that
        compiled code calls it through a vtable, not a Python attribute lookup.)"""
        self.head_request = False
        self.complete = False
        self.broken = False
        self.reused = False
        self.counted = False
        """It holds one of its pool's ``max_connections`` slots (until it is lost)."""
        self.answered = False
        """Bytes of an answer arrived for the current exchange (so it reached the service)."""
        self.idle_since = 0.0
        self._write: Callable[[bytes], object] | None = None
        self._new_parser()
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_final = True
        self._headers_done = False
        self._body_framed = True

    def _new_parser(self) -> None:
        parser = self._parser = httptools.HttpResponseParser(self)
        # Bound once per parser: a method lookup on an extension object per call is a
        # measurable part of a request's cost once the rest is compiled.
        self._feed: Callable[[bytes], None] = parser.feed_data
        self._status: Callable[[], int] = parser.get_status_code
        self._keep_alive: Callable[[], bool] = parser.should_keep_alive

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._write = self.transport.write
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:
            # An idle connection has nothing to say; bytes here mean the peer is confused.
            self.broken = True
            self.close()
            return
        # Whatever one read makes the exchange write to its client (typically a response head
        # and its whole body) leaves in one send().
        self.answered = True
        sink.cork_client()
        try:
            self._feed(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            # HttpParserUpgrade: a 101 Switching Protocols. The gateway asked for no upgrade
            # (it never forwards Upgrade), so this is a bad answer like any other.
            self.broken = True
            if self.sink is not None:
                self.sink = None
                sink.upstream_failed("malformed")
            self.close()
        finally:
            sink.uncork_client()

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = True
        sink, self.sink = self.sink, None
        try:
            if sink is None:
                return
            if self._headers_done and not self._body_framed and not self.complete and exc is None:
                # A close-delimited body (no Content-Length, not chunked) ends with the
                # connection: with an orderly close only. A reset means the body may be cut
                # short, and the client must not receive it as a whole one.
                self.complete = True
                sink.upstream_complete(False)
                return
            sink.upstream_failed("reset" if exc is not None else "closed")
        finally:
            # Last: the pool gives this connection's slot to the next request in its queue,
            # which must see the host's health after this failure, not before.
            self.pool.forget(self)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_pause_writing()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_resume_writing()

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            # More bytes after a complete response: never reuse this connection.
            self.broken = True
        self._headers = []
        self._headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._status()
        if 100 <= status < 200:
            # Interim responses (100 Continue, 103 Early Hints) are not forwarded: the gateway
            # answers Expect itself and the client waits for the final response.
            self._in_final = False
            return
        self._in_final = True
        self._headers_done = True
        sink = self.sink
        if sink is None:
            return
        self._body_framed = sink.upstream_head(status, self._headers, self._keep_alive())
        if self.head_request:
            # llhttp cannot be told a response answers HEAD, so it would wait for a body of
            # Content-Length bytes that never comes. The response is complete here; a fresh
            # parser keeps the connection reusable. (When the head itself says there is no
            # body, the old parser reports the message complete too: on_message_complete
            # ignores that second end.)
            keep_alive = self._keep_alive()
            self._new_parser()
            self._finish(keep_alive)

    def on_body(self, body: bytes) -> None:
        sink = self.sink
        if sink is not None and self._in_final:
            sink.upstream_body(body)

    def on_message_complete(self) -> None:
        if not self._in_final:
            self._in_final = True
            return
        if self.complete:
            return  # a HEAD response, finished at its head already
        self._finish(self._keep_alive())

    def _finish(self, keep_alive: bool) -> None:
        self.complete = True
        sink, self.sink = self.sink, None
        if not keep_alive:
            self.broken = True
        if sink is not None:
            sink.upstream_complete(keep_alive)

    # -- ownership --------------------------------------------------------------------------
    def begin(self, sink: ResponseSink, head_request: bool) -> None:
        self.sink = sink
        self.head_request = head_request
        self.complete = False
        self.answered = False
        self._in_final = True
        self._headers_done = False
        self._body_framed = True

    def write(self, data: bytes) -> None:
        write = self._write
        if write is not None:
            write(data)

    def close(self) -> None:
        self.broken = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.broken = True
        self.sink = None
        if self.transport is not None:
            self.transport.abort()
