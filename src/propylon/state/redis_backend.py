"""Records in Redis, shared by any number of gateway processes and machines.

Each decision is one round trip: ``EVALSHA`` of the transition's Lua script over its keys
(a ``NOSCRIPT`` answer, after a Redis restart or failover, loads the script and retries once).
The script reads the time from Redis itself, so gateways whose clocks disagree still share
one window. Keys are ``<prefix><feature key>`` and every record carries a ``PX`` expiry, so
Redis holds only live records.

Every call is bounded by ``timeout`` (connecting included) and the connection pool by
``max_connections``. When Redis does not answer, the store raises ``StoreUnavailable`` and
the caller's failure policy decides (fail open or closed); the outage is logged once when
it begins and once when it ends, and counted in ``health``. While it lasts, one call per
``retry_interval`` tries Redis again and the others fail at once rather than each waiting
for a timeout; the first call that succeeds ends the outage, without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from propylon.state.store import StateStore, StoreUnavailable, Transition

log = logging.getLogger("propylon.state")


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
        "_client",
        "_shas",
        "max_connections",
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
    ) -> None:
        super().__init__(failure_policy)
        self.url = url
        self.prefix = prefix.encode("utf-8")
        self.timeout = timeout
        self.max_connections = max_connections
        self.retry_interval = retry_interval
        self.retry_at = 0.0
        self._client: Any = None
        self._shas: dict[str, str] = {}

    def run(self, transition: Transition, keys: list[bytes], now: float) -> list[float]:
        raise RuntimeError("the Redis store decides asynchronously: use run_async")

    def _connect(self) -> Any:
        # Imported here: redis is the optional extra propylon[redis], needed only when a
        # config names a Redis.
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=self.timeout,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            # No retries inside the client: one decision has one deadline, ours.
            retry=Retry(NoBackoff(), 0),
        )
        return redis.asyncio.Redis(connection_pool=pool)

    async def run_async(self, transition: Transition, keys: list[bytes]) -> list[float]:
        from redis.exceptions import NoScriptError, RedisError

        health = self.health
        if health.down and time.monotonic() < self.retry_at:
            health.failed_decisions += 1
            raise StoreUnavailable("redis is down")
        client = self._client
        if client is None:
            client = self._client = self._connect()
        script = transition.script
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(
                script.encode(), usedforsecurity=False
            ).hexdigest()
        names = [self.prefix + key for key in keys]
        args = transition.script_args()
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    raw = await client.evalsha(sha, len(names), *names, *args)
                except NoScriptError:
                    await client.script_load(script)
                    raw = await client.evalsha(sha, len(names), *names, *args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise StoreUnavailable(type(exc).__name__) from exc
        if health.down:
            health.down = False
            log.warning("state store %s answers again: rate limits are shared again", self.shown)
        return [float(value) for value in raw]

    @property
    def shown(self) -> str:
        return f"redis {redacted(self.url)}"

    def _failed(self, exc: BaseException) -> None:
        health = self.health
        health.failed_decisions += 1
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
        client = self._client
        if client is None:
            return
        self._client = None
        await client.aclose()
        await client.connection_pool.disconnect()
