"""Idle keep-alive connections to one downstream ``scheme://host:port``.

A discovered host (``upstream/discovery.py``) has one pool per address of its name: the pool
connects to ``address`` and still sends the name in ``Host`` and TLS SNI, and its key
(``/stats``, logs, the hash ring) is ``host:port@address``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import TYPE_CHECKING

from propylon.upstream.connection import ConnectionOwner, UpstreamConnection
from propylon.upstream.health import HostHealth

if TYPE_CHECKING:
    from propylon.stats import UpstreamStats


class UpstreamPool(ConnectionOwner):
    """Idle keep-alive connections to one ``scheme://host:port``, most recently used first."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        max_idle: int,
        connect_timeout: float,
        idle_timeout: float,
        stats: UpstreamStats,
        address: str | None = None,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.address = address if address is not None else host
        """Where connections go: the host itself, or one address its name resolved to."""
        self.key = f"{host}:{port}" if address is None else f"{host}:{port}@{address}"
        # RFC 9110 s.7.2 / RFC 3986 s.3.2.2: an IPv6 literal is bracketed in Host.
        authority = f"[{host}]" if ":" in host else host
        self.host_header = (
            authority if (scheme, port) in (("http", 80), ("https", 443)) else f"{authority}:{port}"
        ).encode("idna")
        self.stats = stats
        self.health = HostHealth(self.key)
        """Whether the host is in rotation (every route listing it shares this)."""
        self._idle: list[UpstreamConnection] = []
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if scheme == "https" else None
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def take_idle(self) -> UpstreamConnection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if not conn.broken and transport is not None and not transport.is_closing():
                conn.reused = True
                return conn
            conn.close()  # dropped from the pool: its socket must not outlive it
        return None

    async def connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        self._loop = loop
        _transport, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: UpstreamConnection(self),
                self.address,
                self.port,
                ssl=self._ssl,
                server_hostname=self.host if self._ssl is not None else None,
            ),
            self._connect_timeout,
        )
        conn.reused = False
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        transport = conn.transport
        if (
            self._closed
            or conn.broken
            or transport is None
            or transport.is_closing()
            or len(self._idle) >= self._max_idle
        ):
            conn.close()
            return
        loop = self._loop or asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._idle_timeout, self._sweep)

    def forget(self, conn: UpstreamConnection) -> None:
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)

    def _sweep(self) -> None:
        """Close connections idle longer than ``idle_timeout``.

        Upstream servers close idle keep-alive connections on their own schedule; closing ours
        first narrows the window in which a request is written to a connection that the peer
        is closing at the same moment.
        """
        self._sweeper = None
        loop = self._loop
        if loop is None or self._closed:
            return
        cutoff = loop.time() - self._idle_timeout
        keep = []
        for conn in self._idle:
            if conn.idle_since < cutoff:
                conn.close()
            else:
                keep.append(conn)
        self._idle = keep
        if keep:
            self._sweeper = loop.call_later(self._idle_timeout, self._sweep)

    def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
