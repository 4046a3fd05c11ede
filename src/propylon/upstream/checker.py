"""Active health checks: ``GET <path>`` on each checked host at its interval.

Off the request path (plain Python, one aiohttp session per worker, opened only when some
route configures a check). Every checked host is checked whatever its state, passively
ejected hosts included: a passing check brings such a host back before its cool-down ends,
so a restarted service is in rotation within one interval. A check passes on a 2xx or 3xx
within the check's timeout; anything else (refused, reset, timeout, 4xx, 5xx) fails it.
Each worker checks for itself (its own health table), so ``--workers N`` sends N checks.
Discovered hosts come and go (``add``/``remove``): each address of a name is checked on its
own, with the name in ``Host``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from propylon.config.model import HealthCheckSpec
from propylon.upstream.pool import UpstreamPool

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("propylon.health")


class HealthChecker:
    def __init__(
        self,
        checks: Sequence[tuple[UpstreamPool, HealthCheckSpec]],
        clock: Callable[[], float],
    ) -> None:
        self.checks = tuple(checks)
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[UpstreamPool, asyncio.Task[None]] = {}
        self._started = False

    def start(self) -> None:
        self._started = True
        for pool, spec in self.checks:
            self.add(pool, spec)

    def add(self, pool: UpstreamPool, spec: HealthCheckSpec) -> None:
        """Check ``pool`` from now on (at start, or when discovery adds an address)."""
        if not self._started or pool in self._tasks:
            return
        if self._session is None:
            # Loaded only when a route has active checks: aiohttp costs a worker ~10 MiB.
            import aiohttp

            self._session = aiohttp.ClientSession(
                # No pooling: a check must open a connection as a request would, or a check
                # could pass on a kept-alive socket of a host that no longer accepts any.
                connector=aiohttp.TCPConnector(force_close=True),
                auto_decompress=False,
            )
        self._tasks[pool] = asyncio.get_running_loop().create_task(self._run(pool, spec))

    def remove(self, pool: UpstreamPool) -> None:
        """Stop checking ``pool`` (discovery removed its address)."""
        task = self._tasks.pop(pool, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        self._started = False
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self, pool: UpstreamPool, spec: HealthCheckSpec) -> None:
        while True:
            try:
                await self.check(pool, spec)
            except asyncio.CancelledError:
                raise
            except Exception:  # a checker that dies would leave the host's state frozen
                log.exception("health check of %s failed unexpectedly", pool.key)
            await asyncio.sleep(spec.interval)

    async def check(self, pool: UpstreamPool, spec: HealthCheckSpec) -> bool:
        """One check of ``pool``'s host; records and returns whether it passed."""
        import aiohttp  # loaded by start() already: a dictionary lookup

        session = self._session
        assert session is not None
        host_header = pool.host_header.decode("idna")
        if pool.address == pool.host:
            url = f"{pool.scheme}://{host_header}{spec.path}"
            server_hostname: str | None = None
        else:
            # A discovered address: connect to it, name the host in Host (and in SNI).
            shown = f"[{pool.address}]" if ":" in pool.address else pool.address
            url = f"{pool.scheme}://{shown}:{pool.port}{spec.path}"
            server_hostname = pool.host if pool.scheme == "https" else None
        cause = ""
        try:
            async with session.get(
                url,
                timeout=aiohttp.ClientTimeout(total=spec.timeout),
                allow_redirects=False,
                headers={"Host": host_header},
                server_hostname=server_hostname,
            ) as response:
                if 200 <= response.status < 400:
                    was_out = not pool.health.available(self.clock())
                    pool.health.check_passed(spec.healthy_threshold)
                    if was_out and pool.health.available(self.clock()):
                        log.warning(
                            "upstream %s passed its health check: back in rotation", pool.key
                        )
                    return True
                cause = "check_status"
        except TimeoutError:
            cause = "check_timeout"
        except (aiohttp.ClientError, OSError):
            cause = "check_refused"
        was_down = pool.health.checked_down
        pool.health.check_failed(spec.unhealthy_threshold, cause)
        if pool.health.checked_down and not was_down:
            log.warning(
                "upstream %s failed its health checks (%s): out of rotation", pool.key, cause
            )
        return False
