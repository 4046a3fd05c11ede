"""Records in Redis, shared by any number of gateway processes and machines.

Each decision is one ``EVALSHA`` of the transition's Lua script over its keys, atomic in
Redis by itself. The script reads the time from Redis itself, so gateways whose clocks
disagree still share one window. Keys are ``<prefix><feature key>`` and every record carries
a ``PX`` expiry, so Redis holds only live records.

Decisions are batched: ``submit`` queues a decision and the store sends, on the next turn of
the event loop, everything queued meanwhile as one pipeline (one write, one round trip,
``max_batch`` decisions at most; no ``MULTI``: each ``EVALSHA`` is atomic on its own and two
decisions need not be atomic together). Each waiting request is resumed by its callback
when the batch's replies are read: no task or coroutine per request, one per batch. At most
``max_in_flight`` batches are out at once, each on its own connection; decisions arriving
meanwhile wait for the next one (so under load batches grow instead of round trips
multiplying). A ``NOSCRIPT`` reply (after a Redis restart or failover) loads the script and
sends the decisions it refused again, once, in one more round trip.

No decision waits longer than ``timeout`` from when it was queued (connecting included):
a batch's deadline is its oldest decision's. When Redis does not answer, the decisions get
None and the caller's failure policy decides (fail open or closed); the outage is logged
once when it begins and once when it ends, and counted in ``health``. While it lasts, one
batch per ``retry_interval`` tries Redis again (decisions queued meanwhile wait for it and
the others fail at once rather than each waiting for a timeout); the first batch that
succeeds ends the outage, without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import deque
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from propylon.state.store import Done, StateStore, StoreUnavailable, Transition

log = logging.getLogger("propylon.state")

MAX_BATCH: Final = 256
"""Decisions per round trip at most: bounds one write and the latency a batch adds."""
MAX_IN_FLIGHT: Final = 4
"""Batches out at once at most (each holds a connection)."""

Queued = tuple[Transition, list[bytes], Done, float]
"""A decision waiting to be sent: its transition, keys, callback and when it was queued
(the loop's clock)."""


def redacted(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class RedisStore(StateStore):
    __slots__ = (
        "_flush_scheduled",
        "_in_flight",
        "_loop",
        "_pool",
        "_queue",
        "_shas",
        "_tasks",
        "batches",
        "max_batch",
        "max_in_flight",
        "prefix",
        "retry_at",
        "retry_interval",
        "timeout",
        "url",
    )

    synchronous = False
    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        timeout: float,
        failure_policy: str,
        max_connections: int = 64,
        retry_interval: float = 1.0,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        super().__init__(failure_policy)
        self.url = url
        self.prefix = prefix.encode("utf-8")
        self.timeout = timeout
        self.max_batch = max(1, max_batch)
        # A batch holds one connection: the configured connection bound caps the batches.
        self.max_in_flight = max(1, min(max_in_flight, max_connections))
        self.retry_interval = retry_interval
        self.retry_at = 0.0
        self.batches = 0
        """Batches sent (round trips begun, NOSCRIPT retries not counted): for tests and
        diagnostics."""
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[Queued] = deque()
        self._flush_scheduled = False
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._shas: dict[str, str] = {}

    def run(self, transition: Transition, keys: list[bytes], now: float) -> list[float]:
        raise RuntimeError("the Redis store decides asynchronously: use submit")

    # -- queueing -------------------------------------------------------------------------------
    def submit(self, transition: Transition, keys: list[bytes], done: Done) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._queue.append((transition, keys, done, loop.time()))
        if not self._flush_scheduled:
            # call_soon, not now: the decisions of the requests read in this turn of the
            # loop go together.
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    async def run_async(self, transition: Transition, keys: list[bytes]) -> list[float]:
        future: asyncio.Future[list[float] | None] = asyncio.get_running_loop().create_future()

        def done(result: list[float] | None) -> None:
            if not future.done():  # the awaiting caller may have been cancelled
                future.set_result(result)

        self.submit(transition, keys, done)
        result = await future
        if result is None:
            raise StoreUnavailable("redis did not decide")
        return result

    def _flush(self) -> None:
        """Send what is queued, as far as the batches in flight allow; fail what cannot be
        decided in time."""
        self._flush_scheduled = False
        queue = self._queue
        loop = self._loop
        if not queue or loop is None:
            return
        now = loop.time()
        stale = 0
        while queue and queue[0][3] + self.timeout <= now:
            # Waited its whole timeout behind batches that did not come back.
            self._deliver_one(queue.popleft()[2], None)
            stale += 1
        if stale:
            self._failed(TimeoutError("queued past the timeout"), stale)
        health = self.health
        if health.down:
            if time.monotonic() < self.retry_at:
                failed = len(queue)
                if failed:
                    health.failed_decisions += failed
                    while queue:
                        self._deliver_one(queue.popleft()[2], None)
                return
            if self._in_flight:
                return  # the probe (or a batch of before the outage) decides for them
            self._launch(loop, 1)  # one probe batch; the rest waits for its outcome
            return
        self._launch(loop, self.max_in_flight - self._in_flight)

    def _launch(self, loop: asyncio.AbstractEventLoop, slots: int) -> None:
        queue = self._queue
        size = self.max_batch
        while queue and slots > 0:
            count = min(size, len(queue))
            batch = [queue.popleft() for _ in range(count)]
            self._in_flight += 1
            self.batches += 1
            slots -= 1
            task = loop.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- one round trip -------------------------------------------------------------------------
    async def _send(self, batch: list[Queued]) -> None:
        from redis.exceptions import RedisError

        replies: list[Any] | None = None
        error: BaseException | None = None
        try:
            async with asyncio.timeout_at(batch[0][3] + self.timeout):
                replies = await self._round_trip(batch)
        except (RedisError, OSError, TimeoutError) as exc:
            error = exc
        except Exception as exc:
            # Not Redis's doing: a bug here. The requests still get the failure policy.
            log.exception("a batch of state decisions failed")
            error = exc
        finally:
            # Also when close() cancels the batch: its requests are dropped with the
            # connections they came on.
            self._in_flight -= 1
        self._settle(batch, replies, error)
        self._flush()

    async def _round_trip(self, batch: list[Queued]) -> list[Any]:
        from redis.exceptions import NoScriptError

        pool = self._pool
        if pool is None:
            pool = self._pool = self._connect()
        prefix = self.prefix
        commands: list[tuple[Any, ...]] = []
        for transition, keys, _done, _queued in batch:
            commands.append(
                (
                    "EVALSHA",
                    self._sha(transition.script),
                    len(keys),
                    *[prefix + key for key in keys],
                    *transition.script_args(),
                )
            )
        connection = await pool.get_connection()
        try:
            replies = await exchange(connection, commands)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                # The script did not run for these (NOSCRIPT): safe to send them again.
                scripts = list({batch[i][0].script: None for i in missing})
                again = await exchange(
                    connection,
                    [("SCRIPT", "LOAD", script) for script in scripts]
                    + [commands[i] for i in missing],
                )
                for reply in again[: len(scripts)]:
                    if isinstance(reply, Exception):
                        raise reply
                for index, reply in zip(missing, again[len(scripts) :], strict=True):
                    replies[index] = reply
        finally:
            await pool.release(connection)
        return replies

    def _sha(self, script: str) -> str:
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(
                script.encode(), usedforsecurity=False
            ).hexdigest()
        return sha

    def _connect(self) -> Any:
        # Imported here: redis is the optional extra propylon[redis], needed only when a
        # config names a Redis.
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        return redis.asyncio.ConnectionPool.from_url(
            self.url,
            # Never more connections than batches in flight, so the pool never waits.
            max_connections=self.max_in_flight,
            # No socket timeout: the batch's deadline bounds every read and write (a
            # socket timeout would cost a timer, or a task, per reply).
            socket_timeout=None,
            socket_connect_timeout=self.timeout,
            # No retries inside the client: one decision has one deadline, ours.
            retry=Retry(NoBackoff(), 0),
        )

    # -- results --------------------------------------------------------------------------------
    def _settle(
        self, batch: list[Queued], replies: list[Any] | None, error: BaseException | None
    ) -> None:
        """Health first (so that the log says why before any request is answered), then
        each request's callback."""
        results: list[list[float] | None] = []
        failed = 0
        for index in range(len(batch)):
            result: list[float] | None = None
            if replies is not None:
                reply = replies[index]
                if isinstance(reply, Exception):
                    error = error or reply
                else:
                    try:
                        result = [float(value) for value in reply]
                    except (TypeError, ValueError) as exc:
                        error = error or exc
            if result is None:
                failed += 1
            results.append(result)
        health = self.health
        if failed:
            self._failed(error or RuntimeError("no reply"), failed)
        elif health.down:
            health.down = False
            log.warning("state store %s answers again: rate limits are shared again", self.shown)
        for entry, result in zip(batch, results, strict=True):
            self._deliver_one(entry[2], result)

    @staticmethod
    def _deliver_one(done: Done, result: list[float] | None) -> None:
        try:
            done(result)
        except Exception:
            # The callback's own failure (the flow turns its stage's into a 500); the other
            # requests of the batch are still answered.
            log.exception("a state decision's callback failed")

    @property
    def shown(self) -> str:
        return f"redis {redacted(self.url)}"

    def _failed(self, exc: BaseException, count: int = 1) -> None:
        health = self.health
        health.failed_decisions += count
        self.retry_at = time.monotonic() + self.retry_interval
        if health.down:
            return
        health.down = True
        health.outages += 1
        log.error(
            "state store %s does not answer (%s): rate limits fail %s until it does",
            self.shown,
            type(exc).__name__,
            self.failure_policy,
        )

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # Queued decisions are dropped: the gateway closes stores after its connections.
        self._queue.clear()
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        await pool.disconnect()


async def exchange(connection: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` in one write on ``connection`` and read their replies, in order;
    an error reply is returned in its place (as redis-py's exception), not raised, so the
    connection stays in step. A failure of the connection itself raises."""
    from redis.exceptions import ResponseError

    await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
    replies: list[Any] = []
    for _ in commands:
        try:
            # math.inf: no timer per reply (the batch's deadline covers them all); redis-py
            # disconnects a connection whose read is cancelled by that deadline.
            replies.append(await connection.read_response(timeout=math.inf))
        except ResponseError as exc:
            replies.append(exc)
    return replies
