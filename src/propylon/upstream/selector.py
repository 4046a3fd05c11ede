"""Which of a route's downstream hosts a request goes to: the balancers.

One selector per route, built at start-up (``selector_for``). ``pick(flow)`` returns the pool of
an available host, or None when health or ejection has taken every host out (the gateway
answers 503 without a connect attempt). Selectors that count requests in flight
(``tracking``) are told when each exchange ends (``release``); the others are not called
again. A retry asks the same selector for another host (``pick_again``): the balancer's
choice when it is not the host just tried, else the next available host.

Ocelot's balancers behave as in Ocelot 25 (``src/Ocelot/LoadBalancer/Balancers``):

- ``first`` (``NoLoadBalancer``): the first host; with health, the first available one.
- ``round_robin`` (``RoundRobin``): the hosts in order from the first, one position per
  request, out hosts skipped. The default, and the cheapest: one attribute read per request.
- ``least_connection`` (``LeastConnection``): fewest requests this route has in flight on
  the host (from this worker); ties go to the first listed.
- ``sticky_cookie`` (``CookieStickySessions``): the host remembered for the cookie's value,
  else the next of a round robin; routes with the same cookie name share the table and the
  round robin's position. The cookie is read, never set; a request without it has the empty
  value, so cookie-less requests share one session, as in Ocelot.

propylon's own: ``weighted_round_robin`` (nginx's smooth weighted round robin),
``power_of_two`` (two random available hosts, the one with fewer requests in flight), and
``hash`` (a consistent-hash ring on a header, cookie or claim value: a host leaving the set,
or taken out, moves only its own keys; a request without the value goes round robin).

A route whose host names are discovered (``upstream/discovery.py``) gets a new selector when
a name's addresses change: built aside, it takes over what its predecessor knew of the hosts
that stay (``adopt``), then replaces it in one assignment on the loop, so a request sees the
old host set or the new one, never a mix. An exchange that ends after the swap releases its
host into the new selector, which ignores a host it does not have.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from propylon.config.model import BalancerSpec
from propylon.upstream.pool import UpstreamPool

if TYPE_CHECKING:
    from propylon.auth.principal import Principal

MAX_SESSIONS = 100_000
"""Sticky sessions kept per cookie name; beyond it expired ones go first, then the oldest."""
RING_POINTS = 160
"""Points per host on the hash ring: enough that keys spread within a few percent."""


class Flow(Protocol):
    """What a balancer reads of a request (the plane's ``Flow`` has it; this layer never
    imports the plane)."""

    principal: Principal | None

    def header(self, lower_name: bytes) -> bytes | None:
        raise NotImplementedError


class Cursor:
    """A round robin's position, shared by the routes of one sticky-session table."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Selector:
    """Picks one of ``pools``; the base of every balancer."""

    __slots__ = ("clock", "pools", "tracking")

    def __init__(self, pools: Sequence[UpstreamPool], clock: Callable[[], float]) -> None:
        self.pools = tuple(pools)
        self.clock = clock
        self.tracking = False
        """Whether ``release`` must be called when an exchange it picked for ends."""

    def pick(self, flow: Flow) -> UpstreamPool | None:
        raise NotImplementedError

    def release(self, pool: UpstreamPool) -> None:
        """The exchange on ``pool`` ended (only called when ``tracking``)."""

    def pick_again(self, flow: Flow, tried: UpstreamPool) -> UpstreamPool | None:
        """A host other than ``tried`` for another attempt of the same request (a retry),
        chosen the balancer's way where it can be: ``tried`` again only when no other host
        is available. Nothing on a first pick pays for this."""
        for _ in range(len(self.pools)):
            pool = self.pick(flow)
            if pool is None or pool is not tried:
                return pool
            if self.tracking:
                self.release(pool)
        # The balancer insists (a hash, a sticky session): the next available host after it
        # (from the first when discovery has just taken ``tried`` out of the set).
        index = position(self.pools, tried)
        if index < 0:
            found = self._scan(0)
            if found is not None and self.tracking:
                self._lease(found)
            return found
        count = len(self.pools)
        now = self.clock()
        for step in range(1, count):
            pool = self.pools[(index + step) % count]
            if pool.health.available(now):
                if self.tracking:
                    self._lease(pool)
                return pool
        return tried if tried.health.available(now) else None

    def _lease(self, pool: UpstreamPool) -> None:
        """Count ``pool`` as picked (tracking selectors)."""

    def adopt(self, previous: Selector) -> None:
        """Take over ``previous``'s state for the hosts both have (a discovered host set
        changed): in-flight counts, a round robin's position. Off the request path."""

    def available(self) -> list[int]:
        """Indexes of the hosts in rotation now."""
        now = self.clock()
        return [i for i, pool in enumerate(self.pools) if pool.health.available(now)]

    def _scan(self, start: int) -> UpstreamPool | None:
        """The first available host at or after ``start`` (wrapping), or None."""
        pools = self.pools
        count = len(pools)
        now = self.clock()
        for step in range(count):
            pool = pools[(start + step) % count]
            if pool.health.available(now):
                return pool
        return None


def position(pools: tuple[UpstreamPool, ...], pool: UpstreamPool) -> int:
    """``pool``'s index in ``pools``; -1 when a discovered host set no longer has it."""
    try:
        return pools.index(pool)
    except ValueError:
        return -1


def carried(previous: Selector, counts: list[int], pools: tuple[UpstreamPool, ...]) -> list[int]:
    """One count per host of ``pools``: ``previous``'s ``counts`` for the hosts it had."""
    out = []
    for pool in pools:
        index = position(previous.pools, pool)
        out.append(counts[index] if index >= 0 else 0)
    return out


class Unavailable(Selector):
    """A route none of whose discovered names has an address yet: 503, no connect attempt."""

    def pick(self, flow: Flow) -> UpstreamPool | None:
        return None


class Only(Selector):
    """A route with one host. Passive ejection never takes it out of this route: there is no
    other host to send the request to, and a 503 for the whole cool-down would hide that the
    host recovered (nginx ignores ``max_fails`` for a single server for the same reason). An
    active check that finds it down does take it out: the operator asked for that verdict."""

    def pick(self, flow: Flow) -> UpstreamPool | None:
        pool = self.pools[0]
        if pool.health.checked_down:
            return None
        return pool


class First(Selector):
    def pick(self, flow: Flow) -> UpstreamPool | None:
        pool = self.pools[0]
        if pool.health.out_until == 0.0:
            return pool
        return self._scan(0)


class RoundRobin(Selector):
    __slots__ = ("cursor",)

    def __init__(
        self,
        pools: Sequence[UpstreamPool],
        clock: Callable[[], float],
        cursor: Cursor | None = None,
    ) -> None:
        super().__init__(pools, clock)
        self.cursor = cursor if cursor is not None else Cursor()

    def pick(self, flow: Flow) -> UpstreamPool | None:
        pools = self.pools
        count = len(pools)
        cursor = self.cursor
        index = cursor.value
        if index >= count:
            index = 0
        cursor.value = index + 1
        pool = pools[index]
        if pool.health.out_until == 0.0:
            return pool
        found = self._scan(index)
        if found is not None:
            # Go on after the host chosen instead, so the others keep their share.
            cursor.value = self.pools.index(found) + 1
        return found

    def adopt(self, previous: Selector) -> None:
        if isinstance(previous, RoundRobin) and previous.cursor is not self.cursor:
            # Past the end wraps to the first host at the next pick.
            self.cursor.value = previous.cursor.value


class LeastConnection(Selector):
    __slots__ = ("leases",)

    def __init__(self, pools: Sequence[UpstreamPool], clock: Callable[[], float]) -> None:
        super().__init__(pools, clock)
        self.leases = [0] * len(self.pools)
        self.tracking = True

    def pick(self, flow: Flow) -> UpstreamPool | None:
        best = -1
        fewest = 0
        now = self.clock()
        leases = self.leases
        for i, pool in enumerate(self.pools):
            if pool.health.available(now) and (best < 0 or leases[i] < fewest):
                best = i
                fewest = leases[i]
        if best < 0:
            return None
        leases[best] += 1
        return self.pools[best]

    def _lease(self, pool: UpstreamPool) -> None:
        index = position(self.pools, pool)
        if index >= 0:
            self.leases[index] += 1

    def release(self, pool: UpstreamPool) -> None:
        index = position(self.pools, pool)
        if index >= 0 and self.leases[index] > 0:
            self.leases[index] -= 1

    def adopt(self, previous: Selector) -> None:
        if isinstance(previous, LeastConnection):
            self.leases = carried(previous, previous.leases, self.pools)
        elif isinstance(previous, PowerOfTwo):
            self.leases = carried(previous, previous.in_flight, self.pools)


class SessionTable:
    """Ocelot's sticky-session store for one cookie name: cookie value -> host, expiry."""

    __slots__ = ("cursor", "expiry", "sessions")

    def __init__(self, expiry: float) -> None:
        self.expiry = expiry
        self.sessions: dict[str, tuple[UpstreamPool, float]] = {}
        self.cursor = Cursor()

    def get(self, value: str, now: float) -> UpstreamPool | None:
        found = self.sessions.get(value)
        if found is None:
            return None
        pool, until = found
        if until < now:
            del self.sessions[value]
            return None
        return pool

    def put(self, value: str, pool: UpstreamPool, now: float) -> None:
        sessions = self.sessions
        # Re-inserted, so the dict's order is least recently used first.
        sessions.pop(value, None)
        if len(sessions) >= MAX_SESSIONS:
            for stale in [k for k, (_p, until) in sessions.items() if until < now]:
                del sessions[stale]
            while len(sessions) >= MAX_SESSIONS:
                del sessions[next(iter(sessions))]
        sessions[value] = (pool, now + self.expiry)


class StickyCookie(Selector):
    __slots__ = ("cookie", "inner", "table")

    def __init__(
        self,
        pools: Sequence[UpstreamPool],
        clock: Callable[[], float],
        cookie: str,
        table: SessionTable,
    ) -> None:
        super().__init__(pools, clock)
        self.cookie = cookie
        self.table = table
        self.inner = RoundRobin(pools, clock, table.cursor)

    def pick(self, flow: Flow) -> UpstreamPool | None:
        value = cookie_value(flow, self.cookie) or ""
        now = self.clock()
        table = self.table
        pool = table.get(value, now)
        # A session names a host; another route of the table may not have it, and a host
        # taken out loses its sessions to the others (Ocelot has no health to consult).
        if pool is None or pool not in self.pools or not pool.health.available(now):
            pool = self.inner.pick(flow)
            if pool is None:
                return None
        table.put(value, pool, now)
        return pool


class WeightedRoundRobin(Selector):
    __slots__ = ("current", "weights")

    def __init__(
        self, pools: Sequence[UpstreamPool], clock: Callable[[], float], weights: Sequence[int]
    ) -> None:
        super().__init__(pools, clock)
        self.weights = list(weights)
        self.current = [0] * len(self.pools)

    def pick(self, flow: Flow) -> UpstreamPool | None:
        # nginx's smooth weighted round robin: every available host gains its weight, the
        # one with the most goes and pays back the total, so weights 5:1:1 interleave as
        # a a b a c a a instead of sending five in a row to the first.
        now = self.clock()
        current = self.current
        weights = self.weights
        best = -1
        total = 0
        for i, pool in enumerate(self.pools):
            if not pool.health.available(now):
                continue
            current[i] += weights[i]
            total += weights[i]
            if best < 0 or current[i] > current[best]:
                best = i
        if best < 0:
            return None
        current[best] -= total
        return self.pools[best]

    def adopt(self, previous: Selector) -> None:
        if isinstance(previous, WeightedRoundRobin):
            self.current = carried(previous, previous.current, self.pools)


class PowerOfTwo(Selector):
    __slots__ = ("in_flight", "random")

    def __init__(
        self,
        pools: Sequence[UpstreamPool],
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(pools, clock)
        self.in_flight = [0] * len(self.pools)
        # Not a secret: which of two hosts to compare.
        self.random = rng or random.Random()  # noqa: S311
        self.tracking = True

    def pick(self, flow: Flow) -> UpstreamPool | None:
        candidates = self.available()
        if not candidates:
            return None
        if len(candidates) == 1:
            chosen = candidates[0]
        else:
            a, b = self.random.sample(candidates, 2)
            chosen = a if self.in_flight[a] <= self.in_flight[b] else b
        self.in_flight[chosen] += 1
        return self.pools[chosen]

    def _lease(self, pool: UpstreamPool) -> None:
        index = position(self.pools, pool)
        if index >= 0:
            self.in_flight[index] += 1

    def release(self, pool: UpstreamPool) -> None:
        index = position(self.pools, pool)
        if index >= 0 and self.in_flight[index] > 0:
            self.in_flight[index] -= 1

    def adopt(self, previous: Selector) -> None:
        if isinstance(previous, PowerOfTwo):
            self.in_flight = carried(previous, previous.in_flight, self.pools)
        elif isinstance(previous, LeastConnection):
            self.in_flight = carried(previous, previous.leases, self.pools)


def ring_hash(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class ConsistentHash(Selector):
    __slots__ = ("fallback", "hash_on", "key", "owners", "points")

    def __init__(
        self,
        pools: Sequence[UpstreamPool],
        clock: Callable[[], float],
        hash_on: str,
        key: str,
    ) -> None:
        super().__init__(pools, clock)
        self.hash_on = hash_on
        self.key = key
        self.fallback = RoundRobin(pools, clock)
        # Each host's points depend on its own name only, so adding or removing a host
        # leaves every other host's points, and so their keys, where they were.
        ring = sorted(
            (ring_hash(f"{pool.key}#{n}".encode()), i)
            for i, pool in enumerate(self.pools)
            for n in range(RING_POINTS)
        )
        self.points = [point for point, _ in ring]
        self.owners = [owner for _, owner in ring]

    def pick(self, flow: Flow) -> UpstreamPool | None:
        value = self.value_of(flow)
        if value is None:
            return self.fallback.pick(flow)
        return self.owner(value)

    def owner(self, value: str) -> UpstreamPool | None:
        """The host of ``value``: the first available one clockwise from its point."""
        points = self.points
        count = len(points)
        start = bisect_left(points, ring_hash(value.encode()))
        now = self.clock()
        for step in range(count):
            pool = self.pools[self.owners[(start + step) % count]]
            if pool.health.available(now):
                return pool
        return None

    def value_of(self, flow: Flow) -> str | None:
        if self.hash_on == "header":
            raw = flow.header(self.key.lower().encode("latin-1"))
            return raw.decode("latin-1") if raw else None
        if self.hash_on == "cookie":
            return cookie_value(flow, self.key)
        principal = flow.principal
        if principal is None:
            return None
        claim = principal.claims.get(self.key)
        return None if claim is None else str(claim)


def cookie_value(flow: Flow, name: str) -> str | None:
    """The value of cookie ``name`` in the request's ``Cookie`` header, or None."""
    raw = flow.header(b"cookie")
    if not raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip()
    return None


class Tables:
    """The sticky-session tables of one worker, by cookie name (as Ocelot keys its
    balancers ``CookieStickySessions:<cookie>``)."""

    def __init__(self) -> None:
        self._tables: dict[str, SessionTable] = {}

    def table(self, cookie: str, expiry: float) -> SessionTable:
        table = self._tables.get(cookie)
        if table is None:
            table = self._tables[cookie] = SessionTable(expiry)
        return table


def selector_for(
    spec: BalancerSpec,
    pools: Sequence[UpstreamPool],
    clock: Callable[[], float],
    tables: Tables,
) -> Selector:
    kind = spec.kind
    if not pools:
        return Unavailable(pools, clock)
    if len(pools) == 1 and kind != "sticky_cookie":
        # Sticky routes keep their class: their session table is shared with other routes.
        return Only(pools, clock)
    if kind == "first":
        return First(pools, clock)
    if kind == "least_connection":
        return LeastConnection(pools, clock)
    if kind == "sticky_cookie":
        return StickyCookie(pools, clock, spec.key, tables.table(spec.key, spec.expiry))
    if kind == "weighted_round_robin":
        return WeightedRoundRobin(pools, clock, spec.weights or [1] * len(pools))
    if kind == "power_of_two":
        return PowerOfTwo(pools, clock)
    if kind == "hash":
        return ConsistentHash(pools, clock, spec.hash_on, spec.key)
    return RoundRobin(pools, clock)
