"""The connections of one worker to one downstream ``scheme://host:port``.

Idle keep-alive connections wait most recently used first. At most ``max_connections``
are open at once (in use, idle or being opened; 0: no cap), so a slow upstream cannot make
the gateway open thousands of sockets to it: beyond the cap a request waits in the host's
queue (at most ``queue_limit`` of them) for a connection another request gives back, or for
a closed one's slot, first come first served. How long it may wait is its exchange's
business (``limits.upstream_queue_timeout``, judged by the watchdog).

A discovered host (``upstream/discovery.py``) has one pool per address of its name: the pool
connects to ``address`` and still sends the name in ``Host`` and TLS SNI, and its key
(``/stats``, logs, the hash ring) is ``host:port@address``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from mypy_extensions import trait

from propylon.upstream.connection import ConnectionOwner, UpstreamConnection
from propylon.upstream.health import HostHealth

if TYPE_CHECKING:
    from propylon.config.model import Limits
    from propylon.stats import UpstreamStats


@trait
class PoolWaiter:
    """A request waiting in a pool's queue (the engine's exchange)."""

    def pool_granted(self, conn: UpstreamConnection | None) -> None:
        """Its turn: ``conn`` is a connection handed over, or None: a slot was reserved
        for it, so it opens one itself (``connect``)."""
        raise NotImplementedError


class UpstreamPool(ConnectionOwner):
    """The connections to one ``scheme://host:port``: idle ones, the cap, the queue."""

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
        max_connections: int = 0,
        queue_limit: int = 0,
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
        self.max_connections = max_connections
        self.open = 0
        """Connections open or being opened (counted against ``max_connections``)."""
        self.queue_limit = queue_limit
        self.queue: deque[PoolWaiter] = deque()
        self.waiting = 0
        """``len(queue)``, as a native int: every response's ``release`` reads it."""

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

    def reserve(self) -> bool:
        """A slot for a new connection, if the cap allows one (then ``connect`` next)."""
        cap = self.max_connections
        if cap and self.open >= cap:
            return False
        self.open += 1
        return True

    def enqueue(self, waiter: PoolWaiter) -> bool:
        """Wait for a connection or a slot; False when the queue is full."""
        if self.waiting >= self.queue_limit:
            return False
        self.queue.append(waiter)
        self.waiting += 1
        return True

    def leave(self, waiter: PoolWaiter) -> None:
        """``waiter`` no longer waits (it timed out, or its client left)."""
        with contextlib.suppress(ValueError):
            self.queue.remove(waiter)
            self.waiting -= 1

    async def connect(self) -> UpstreamConnection:
        """Open a connection in a slot ``reserve`` gave; the slot is free again when the
        connection closes, or at once when it cannot be made."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
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
        except BaseException:
            self._slot_freed()
            raise
        conn.reused = False
        conn.counted = True
        if conn.broken:
            # Lost already, before it was counted: its slot goes with it.
            conn.counted = False
            self._slot_freed()
        return conn

    def unreserve(self) -> None:
        """Give back a slot ``reserve`` (or the queue) gave, unused."""
        self._slot_freed()

    def _slot_freed(self) -> None:
        self.open -= 1
        if self.waiting and not self._closed and self.reserve():
            self.waiting -= 1
            self.queue.popleft().pool_granted(None)

    def release(self, conn: UpstreamConnection) -> None:
        transport = conn.transport
        if self._closed or conn.broken or transport is None or transport.is_closing():
            conn.close()
            return
        if self.waiting:
            # Someone waits: the connection goes straight to the first in line.
            conn.reused = True
            self.waiting -= 1
            self.queue.popleft().pool_granted(conn)
            return
        if len(self._idle) >= self._max_idle:
            conn.close()
            return
        loop = self._loop or asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._idle_timeout, self._sweep)

    def forget(self, conn: UpstreamConnection) -> None:
        if conn.counted:
            conn.counted = False
            self._slot_freed()
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


def sized_pool(
    scheme: str,
    host: str,
    port: int,
    limits: Limits,
    stats: UpstreamStats,
    clock: Callable[[], float],
    *,
    address: str | None = None,
) -> UpstreamPool:
    """A pool with the config's ``limits``, its host's health shown in ``stats``: how the
    gateway makes every pool, for a listed host and for each address of a discovered one."""
    pool = UpstreamPool(
        scheme,
        host,
        port,
        max_idle=limits.upstream_pool_size,
        connect_timeout=limits.connect_timeout,
        idle_timeout=limits.upstream_idle_timeout,
        stats=stats,
        address=address,
        max_connections=limits.upstream_max_connections,
        queue_limit=limits.upstream_queue,
    )
    stats.health = functools.partial(pool.health.snapshot, clock, time.time)
    return pool
