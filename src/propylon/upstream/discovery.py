"""DNS discovery: a downstream host name is as many targets as it has addresses.

One task per distinct name per worker resolves it in the background, never on the request
path: at start-up (``resolve_all``, before the worker listens), then every ``interval``
seconds, or sooner when the records' TTL is shorter (never more often than ``min_interval``).
When the addresses change, ``on_change(name, addresses)`` is called on the loop; the gateway
then swaps the host sets of the routes that list the name (``engine/discovered.py``).

A failed or empty resolution keeps the last good set; the change of state is logged once
(failing, then resolving again), not at every attempt, and ``snapshot`` shows each name's
addresses, when it last resolved and its last error in ``/stats``.

Two resolvers: with ``dns.nameservers`` set, dnspython's asyncio resolver asks those servers
for A and AAAA records (their TTL is known); without, the system's (``getaddrinfo`` in the
loop's executor: ``/etc/hosts``, ``resolv.conf``, what a connect would have used), which
gives no TTL. Plain Python (not compiled): it runs once per interval, not per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from propylon.config.model import DnsSpec

log = logging.getLogger("propylon.discovery")


class LookupFailed(Exception):
    """A resolution that gave no address: its message says why, for logs and ``/stats``."""


class Resolved:
    __slots__ = ("addresses", "ttl")

    def __init__(self, addresses: tuple[str, ...], ttl: float | None) -> None:
        self.addresses = addresses
        """Distinct, sorted: the same set always gives the same order (hash rings, logs)."""
        self.ttl = ttl
        """The shortest TTL of the records, when the resolver knows it."""


class Resolver(Protocol):
    async def resolve(self, name: str) -> Resolved:
        """The addresses of ``name``; LookupFailed when there are none."""
        raise NotImplementedError


def is_address(host: str) -> bool:
    """An IP literal is never discovered: it is its own only address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ordered(addresses: set[str]) -> tuple[str, ...]:
    return tuple(sorted(addresses, key=lambda a: ipaddress.ip_address(a).packed))


class SystemResolver:
    """``getaddrinfo``, bounded by ``timeout`` (the thread may finish later; its answer is
    then dropped)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    async def resolve(self, name: str) -> Resolved:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), self.timeout
            )
        except TimeoutError:
            raise LookupFailed(f"timed out after {self.timeout:g}s") from None
        except OSError as exc:
            raise LookupFailed(str(exc.strerror or exc)) from None
        addresses = {str(info[4][0]) for info in infos}
        if not addresses:
            raise LookupFailed("no addresses")
        return Resolved(_ordered(addresses), None)


class NameserverResolver:
    """A and AAAA queries to the configured nameservers (dnspython, loaded only here)."""

    def __init__(self, nameservers: tuple[tuple[str, int], ...], timeout: float) -> None:
        import dns.asyncresolver
        import dns.nameserver

        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers
        ]
        resolver.lifetime = timeout
        resolver.timeout = timeout
        # The name as written is the whole name: no search domains appended.
        resolver.search = []
        resolver.use_search_by_default = False
        self.resolver = resolver

    async def resolve(self, name: str) -> Resolved:
        import dns.exception
        import dns.rdatatype
        import dns.resolver

        addresses: set[str] = set()
        ttl = math.inf
        reasons: list[str] = []
        # Both questions at once: a silent server costs one timeout, not two.
        answers = await asyncio.gather(
            *(
                self.resolver.resolve(name, kind, search=False)
                for kind in (dns.rdatatype.A, dns.rdatatype.AAAA)
            ),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, dns.resolver.NXDOMAIN):
                raise LookupFailed("no such name (NXDOMAIN)")
            if isinstance(answer, dns.resolver.NoAnswer):
                continue
            if isinstance(answer, dns.resolver.NoNameservers):
                reasons.append("no nameserver answered (SERVFAIL or refused)")
                continue
            if isinstance(answer, dns.exception.Timeout):
                reasons.append(f"timed out after {self.resolver.lifetime:g}s")
                continue
            if isinstance(answer, BaseException):
                if not isinstance(answer, dns.exception.DNSException):
                    raise answer
                reasons.append(str(answer) or type(answer).__name__)
                continue
            rrset = answer.rrset
            if rrset is None:
                continue
            ttl = min(ttl, float(rrset.ttl))
            addresses.update(str(record.address) for record in rrset)
        if not addresses:
            raise LookupFailed(reasons[0] if reasons else "no A or AAAA records")
        return Resolved(_ordered(addresses), None if math.isinf(ttl) else ttl)


def resolver_for(spec: DnsSpec) -> Resolver:
    if spec.nameservers:
        return NameserverResolver(spec.nameservers, spec.timeout)
    return SystemResolver(spec.timeout)


class NameState:
    """What one worker knows of one name."""

    __slots__ = ("addresses", "failing", "interval", "last_error", "name", "resolved_at", "ttl")

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.addresses: tuple[str, ...] = ()
        """The last good set (empty until the first success)."""
        self.resolved_at: float | None = None
        """Unix time of the last successful resolution."""
        self.ttl: float | None = None
        self.last_error: str | None = None
        self.failing = False


class Discovery:
    def __init__(
        self,
        names: Mapping[str, float],
        spec: DnsSpec,
        on_change: Callable[[str, tuple[str, ...]], None],
        *,
        resolver: Resolver | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``names``: each name to discover and its re-resolution interval (seconds)."""
        self.spec = spec
        self.states = {name: NameState(name, interval) for name, interval in names.items()}
        self.on_change = on_change
        self.resolver = resolver if resolver is not None or not names else resolver_for(spec)
        self.wall_clock = wall_clock
        self._tasks: list[asyncio.Task[None]] = []

    async def resolve_all(self) -> None:
        """The first resolution of every name, together (start-up)."""
        await asyncio.gather(*(self.resolve(state) for state in self.states.values()))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(state)) for state in self.states.values()]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def delay(self, state: NameState) -> float:
        """Seconds until ``state``'s name is resolved again."""
        if state.failing or state.ttl is None:
            return state.interval
        return max(self.spec.min_interval, min(state.interval, state.ttl))

    async def _run(self, state: NameState) -> None:
        while True:
            await asyncio.sleep(self.delay(state))
            try:
                await self.resolve(state)
            except asyncio.CancelledError:
                raise
            except Exception:  # a resolver task that dies would freeze the name's set
                log.exception("resolving %s failed unexpectedly", state.name)

    async def resolve(self, state: NameState) -> bool:
        """Resolve ``state``'s name once; records the outcome and returns whether it gave
        addresses. A change of the set reaches ``on_change``; a failure keeps the set."""
        assert self.resolver is not None
        try:
            found = await self.resolver.resolve(state.name)
        except LookupFailed as exc:
            state.last_error = str(exc)
            if not state.failing:
                state.failing = True
                if state.addresses:
                    log.warning(
                        "dns: %s did not resolve (%s); keeping its %d address(es): %s",
                        state.name,
                        exc,
                        len(state.addresses),
                        ", ".join(state.addresses),
                    )
                else:
                    log.warning("dns: %s did not resolve (%s)", state.name, exc)
            return False
        state.resolved_at = self.wall_clock()
        state.ttl = found.ttl
        if state.failing:
            state.failing = False
            log.warning("dns: %s resolves again", state.name)
        if found.addresses != state.addresses:
            before = state.addresses
            state.addresses = found.addresses
            log.info(
                "dns: %s -> %s%s",
                state.name,
                ", ".join(found.addresses),
                f" (was {', '.join(before)})" if before else "",
            )
            self.on_change(state.name, found.addresses)
        return True

    def snapshot(self) -> dict[str, Any]:
        """``/stats``: per name, its addresses, when it last resolved and its last error."""
        return {
            state.name: {
                "addresses": list(state.addresses),
                "resolved_at": state.resolved_at,
                "failing": state.failing,
                "last_error": state.last_error,
                "ttl": state.ttl,
            }
            for state in self.states.values()
        }
