"""Rate limiting on a route: Ocelot's ``RateLimitOptions`` and the native ``rate_limits``.

``OcelotLimiter`` runs before authentication (phase 3, as in Ocelot: unauthenticated calls
use quota too) and behaves as Ocelot 25's middleware: the client is the value of the
``ClientIdHeader``; a whitelisted client is neither counted nor given headers; a request
without the header is refused with 503 naming the route and the rule; a refused request gets
the rule's ``StatusCode`` with ``QuotaMessage`` as the envelope's ``message`` and, when headers
are enabled, ``Retry-After`` in seconds with a fraction; an admitted one gets
``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset``.

``NativeLimiter`` runs after authentication (phase 6: its key may be the verified identity):
GCRA over every limit of the route at once, ``RateLimit-Policy`` and ``RateLimit`` on every
response of the route, 429 with ``Retry-After`` (whole seconds) when refused.

Both decide in the worker's state store: at once when it is in-process or shared by the
workers; when it is Redis, the stage submits the decision and waits (``PENDING``, no task of
its own) for the store to call back with the batch the decision went in. When Redis does
not answer, the failure policy decides: ``open`` admits the request (without rate-limit
headers, which would be guesses), ``closed`` answers 503 ``NotReady`` with
``Retry-After: 1``.

Counter keys are ``<readable prefix>:<hash>``: the hash covers the route, the rule and the
client's values, so a client-sent value of any length makes a key of fixed size.
"""

from __future__ import annotations

import time
from hashlib import blake2b
from typing import Final

from propylon import errors
from propylon.auth.claims import claim_value
from propylon.config import dotnet_format
from propylon.config.durations import dotnet_number
from propylon.config.model import OcelotRateLimit, RateLimitPolicy, RouteSpec
from propylon.plane.stage import CONTINUE, Flow, RequestStage
from propylon.ratelimit import fields, gcra
from propylon.ratelimit.fixed_window import FixedWindow
from propylon.ratelimit.gcra import Gcra
from propylon.state.store import StateStore

UNAVAILABLE_HEADERS: Final = (("Retry-After", "1"),)
NO_CLIENT_HEADERS: Final = (("Retry-After", "-1"),)
NO_HEADERS: tuple[tuple[str, str], ...] = ()


REMEMBERED_KEYS = 4096
MAX_REMEMBERED_MATERIAL = 512
"""Key material longer than this (a long header value) is hashed every time: the memo
holds at most REMEMBERED_KEYS * ~(512 + 40) bytes."""


def counter_key(readable: bytes, material: bytes) -> bytes:
    return readable + blake2b(material, digest_size=16).hexdigest().encode()


class OcelotLimiter(RequestStage):
    """One Ocelot route's ``RateLimitOptions`` (already merged with the global ones)."""

    name = "rate_limit"

    __slots__ = (
        "closed",
        "enable_headers",
        "exceeded",
        "header",
        "limit",
        "limit_line",
        "namespace",
        "period",
        "readable",
        "store",
        "synchronous",
        "transition",
        "unknown",
        "whitelist",
    )

    def __init__(self, spec: OcelotRateLimit, route: RouteSpec, store: StateStore) -> None:
        self.store = store
        self.synchronous = store.synchronous  # an attribute read, not a class lookup
        self.closed = False
        self.header = spec.client_id_header.lower().encode("latin-1")
        self.whitelist = frozenset(c.encode("utf-8") for c in spec.client_whitelist)
        self.limit = spec.limit
        self.period = spec.period_seconds
        self.enable_headers = spec.enable_headers
        self.transition = FixedWindow(spec.limit, spec.period_seconds, spec.wait_seconds)
        self.readable = spec.key_prefix.encode("utf-8")[:64] + b":"
        self.namespace = f"{spec.key_prefix}\0{route.counter_key}\0{spec.rule}\0".encode()
        message = dotnet_format.render(spec.quota_message, (str(spec.limit), spec.period))
        kind = errors.RATE_LIMITED
        self.exceeded = errors.ErrorKind(spec.status, kind.code, kind.codemessage, message)
        known = errors.CLIENT_NOT_IDENTIFIED
        # Ocelot's words, so that clients and logs written against Ocelot still match.
        self.unknown = errors.ErrorKind(
            known.status,
            known.code,
            known.codemessage,
            f"Rate limiting client could not be identified for the route "
            f"'{route.upstream_path}' due to a missing or unknown client ID header required "
            f"by rule '{spec.rule}'!",
        )
        self.limit_line = f"X-RateLimit-Limit: {spec.limit}".encode()

    def on_request(self, flow: Flow) -> int:
        client = flow.header(self.header)
        if (client or b"") in self.whitelist:
            return CONTINUE
        if not client:
            return flow.refuse(
                self.unknown, NO_CLIENT_HEADERS if self.enable_headers else NO_HEADERS
            )
        key = counter_key(self.readable, self.namespace + client)
        store = self.store
        if self.synchronous:
            return self.settle(flow, store.run(self.transition, [key], time.time()))
        pending = flow.wait_for(self.decided)
        store.submit(self.transition, [key], flow.deliver)
        return pending

    def decided(self, flow: Flow, result: list[float] | None) -> int:
        """The remote store's answer (None: it could not decide)."""
        if result is None:
            return fail(flow, self.store)
        return self.settle(flow, result)

    def settle(self, flow: Flow, result: list[float]) -> int:
        total = int(result[0])
        if total > self.limit:
            if self.enable_headers:
                return flow.refuse(self.exceeded, (("Retry-After", dotnet_number(result[2])),))
            return flow.refuse(self.exceeded)
        if self.enable_headers:
            flow.add_response_line(self.limit_line)
            flow.add_response_line(b"X-RateLimit-Remaining: %d" % (self.limit - total))
            reset = fields.ocelot_reset(result[1] + self.period)
            flow.add_response_line(b"X-RateLimit-Reset: " + reset.encode())
        return CONTINUE


def fail(flow: Flow, store: StateStore) -> int:
    """The failure policy, while the store (Redis) does not answer."""
    if store.failure_policy == "closed":
        return flow.refuse(errors.STATE_UNAVAILABLE, UNAVAILABLE_HEADERS)
    return CONTINUE


class NativeLimiter(RequestStage):
    """A native route's limits, decided together (GCRA)."""

    name = "rate_limit"

    __slots__ = (
        "by_value",
        "item_prefixes",
        "keys_seen",
        "limits",
        "names",
        "namespaces",
        "parts",
        "periods",
        "policy_line",
        "single_line",
        "store",
        "synchronous",
        "transition",
        "value_kind",
    )

    def __init__(
        self, policies: tuple[RateLimitPolicy, ...], route: RouteSpec, store: StateStore
    ) -> None:
        self.store = store
        self.synchronous = store.synchronous  # an attribute read, not a class lookup
        self.limits = [p.limit for p in policies]
        self.periods = [p.period for p in policies]
        self.names = [p.name for p in policies]
        self.transition = Gcra(self.limits, self.periods)
        self.policy_line = fields.policy_line(policies)
        self.item_prefixes = [fields.limit_item_prefix(p.name) for p in policies]
        self.keys_seen: dict[bytes, bytes] = {}
        """Key material -> counter key: the same callers come back, and hashing the
        material is most of what building a key costs (bounded like every memo)."""
        self.namespaces: list[bytes] = []
        self.parts: list[tuple[tuple[str, str], ...]] = []
        for policy in policies:
            scope = route.counter_key if policy.per_route else "*"
            key = ",".join(str(part) for part in policy.key)
            self.namespaces.append(
                f"{policy.name}\0{policy.limit}/{policy.period!r}\0{scope}\0{key}\0".encode()
            )
            self.parts.append(tuple((part.kind, part.name) for part in policy.key))
        kinds = {tuple(kind for kind, _name in parts if kind != "route") for parts in self.parts}
        only = kinds.pop() if len(kinds) == 1 else ()
        self.value_kind = only[0] if only in (("sub",), ("ip",)) else ""
        """``sub`` or ``ip`` when every limit of the route is keyed by that value alone (the
        usual case): the counter keys are then remembered per value, a lookup by a string
        whose hash Python already holds (the principal of a cached token, the client
        address), instead of building and hashing the key material each time."""
        self.by_value: dict[str, list[bytes]] = {}
        self.single_line = b"RateLimit: " + self.item_prefixes[0] if len(policies) == 1 else b""
        """With one limit, the ``RateLimit`` line up to its numbers."""

    def keys(self, flow: Flow) -> list[bytes]:
        keys: list[bytes] = []
        principal = flow.principal
        namespaces = self.namespaces
        for position, parts in enumerate(self.parts):
            material = namespaces[position]
            for kind, name in parts:
                if kind == "ip":
                    value = flow.client_address().encode()
                elif kind == "sub":
                    value = principal.subject.encode() if principal is not None else b""
                elif kind == "claim":
                    claim = claim_value(principal.claims, name) if principal is not None else None
                    value = b"" if claim is None else str(claim).encode()
                elif kind == "header":
                    value = flow.header(name.encode()) or b""
                else:  # route: the namespace names it already
                    continue
                # length-prefixed, so that no two lists of values run together into one
                material += b"%d:" % len(value) + value
            seen = self.keys_seen
            key = seen.get(material)
            if key is None:
                key = counter_key(b"rl:", material)
                if len(material) <= MAX_REMEMBERED_MATERIAL:
                    if len(seen) >= REMEMBERED_KEYS:
                        seen.clear()
                    seen[material] = key
            keys.append(key)
        return keys

    def remembered_keys(self, flow: Flow) -> list[bytes]:
        """``keys`` for a route keyed by one value (``value_kind``), remembered per value
        (bounded like ``keys_seen``; the lists are never mutated by the stores)."""
        if self.value_kind == "sub":
            principal = flow.principal
            value = principal.subject if principal is not None else ""
        else:
            value = flow.client_address()
        remembered = self.by_value
        keys = remembered.get(value)
        if keys is None:
            keys = self.keys(flow)
            if len(value) <= MAX_REMEMBERED_MATERIAL:
                if len(remembered) >= REMEMBERED_KEYS:
                    remembered.clear()
                remembered[value] = keys
        return keys

    def on_request(self, flow: Flow) -> int:
        keys = self.remembered_keys(flow) if self.value_kind else self.keys(flow)
        store = self.store
        if self.synchronous:
            return self.settle(flow, store.run(self.transition, keys, time.time()))
        pending = flow.wait_for(self.decided)
        store.submit(self.transition, keys, flow.deliver)
        return pending

    def decided(self, flow: Flow, result: list[float] | None) -> int:
        """The remote store's answer (None: it could not decide)."""
        if result is None:
            return fail(flow, self.store)
        return self.settle(flow, result)

    def settle(self, flow: Flow, result: list[float]) -> int:
        admitted = result[0] == 1.0
        now = result[1]
        if self.single_line:
            # One limit (the usual case): the same fields, without the list and the join.
            limit = self.limits[0]
            period = self.periods[0]
            used = result[2] - now
            left = gcra.remaining(limit, period, used)
            reset = gcra.next_unit(limit, period, used, left)
            flow.add_response_line(self.policy_line)
            flow.add_response_line(self.single_line + b"%d;t=%d" % (left, reset))
            if admitted:
                return CONTINUE
            retry = reset if left == 0 else 0
            return flow.refuse(errors.RATE_LIMITED, (("Retry-After", str(max(retry, 1))),))
        items: list[bytes] = []
        retry = 0
        for index, limit in enumerate(self.limits):
            period = self.periods[index]
            used = result[2 + index] - now
            left = gcra.remaining(limit, period, used)
            reset = gcra.next_unit(limit, period, used, left)
            if not admitted and left == 0 and reset > retry:
                retry = reset
            items.append(b"%s%d;t=%d" % (self.item_prefixes[index], left, reset))
        flow.add_response_line(self.policy_line)
        flow.add_response_line(b"RateLimit: " + b", ".join(items))
        if admitted:
            return CONTINUE
        return flow.refuse(errors.RATE_LIMITED, (("Retry-After", str(max(retry, 1))),))
