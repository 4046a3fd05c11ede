"""Ocelot's ``LoadBalancerOptions`` and ``QoSOptions``, route and global, as Ocelot 25 reads them.

Route and global objects merge as Ocelot's ``LoadBalancerOptionsCreator`` and
``QoSOptionsCreator`` do: a global object applies to every route when it has no
``RouteKeys`` (or an empty list), else to the routes whose ``Key`` it lists; a route with its
own object takes, for each key it leaves empty, the global one (when the global applies).

Load balancers: ``NoLoadBalancer``, ``RoundRobin``, ``LeastConnection``,
``CookieStickySessions`` (``Key``: the cookie, ``.AspNetCore.Session`` by default;
``Expiry``: milliseconds, 1 200 000 by default), any letter case. With no type at all
propylon goes round robin over the hosts (Ocelot: ``NoLoadBalancer``).

QoS: the old names win over the new ones when both are given (``ExceptionsAllowedBeforeBreaking``
over ``MinimumThroughput``, ``DurationOfBreak`` over ``BreakDuration``, ``TimeoutValue`` over
``Timeout``). A QoS object that asks for breaking or a timeout gets a breaker; out-of-range
values take Ocelot's defaults with a warning (``CircuitBreakerDelegatingHandler``):
``MinimumThroughput`` below 2 -> 100, ``BreakDuration`` up to 500 ms -> 5000 ms,
``FailureRatio`` outside (0, 1] -> 0.5, ``SamplingDuration`` up to 500 ms -> 10 000 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

from propylon.config.diagnostics import Diagnostics, Loc
from propylon.config.model import BalancerSpec, BreakerSpec
from propylon.config.ocelot_models import (
    GlobalConfiguration,
    LoadBalancerModel,
    OcelotRoute,
    QoSModel,
)

OCELOT_BALANCERS = {
    "noloadbalancer": "first",
    "roundrobin": "round_robin",
    "leastconnection": "least_connection",
    "cookiestickysessions": "sticky_cookie",
}
DEFAULT_COOKIE = ".AspNetCore.Session"
DEFAULT_EXPIRY_MS = 1_200_000
DEFAULT_MINIMUM_THROUGHPUT = 100
LOW_MINIMUM_THROUGHPUT = 2
DEFAULT_BREAK_MS = 5_000
LOW_BREAK_MS = 500
DEFAULT_RATIO = 0.5
DEFAULT_SAMPLING_MS = 10_000
LOW_SAMPLING_MS = 500
LOW_TIMEOUT_MS = 10
HIGH_TIMEOUT_MS = 86_400_000
DEFAULT_TIMEOUT_MS = 30_000


def _applies(route_keys: list[str] | None, key: str | None) -> bool:
    return not route_keys or (key is not None and key in route_keys)


def balancer(
    route: OcelotRoute, loc: Loc, glob: GlobalConfiguration, diag: Diagnostics
) -> BalancerSpec:
    own = route.LoadBalancerOptions
    if own is None and route.LoadBalancer:
        # The pre-16 spelling: a bare type name on the route.
        own = LoadBalancerModel(Type=route.LoadBalancer)
        own_at: Loc = (*loc, "LoadBalancer")
    else:
        own_at = (*loc, "LoadBalancerOptions")
    shared = glob.LoadBalancerOptions
    applies = shared is not None and _applies(shared.RouteKeys, route.Key)
    glob_at: Loc = ("GlobalConfiguration", "LoadBalancerOptions")
    kind, kind_at = None, own_at
    key, expiry, expiry_at = None, None, own_at
    if own is not None:
        kind, key, expiry = own.Type, own.Key, own.Expiry
        expiry_at = (*own_at, "Expiry") if route.LoadBalancerOptions is not None else own_at
        kind_at = (*own_at, "Type") if route.LoadBalancerOptions is not None else own_at
    if shared is not None and applies:
        if not (kind and kind.strip()):
            kind, kind_at = shared.Type, (*glob_at, "Type")
        if not (key and key.strip()):
            key = shared.Key
        if expiry is None:
            expiry, expiry_at = shared.Expiry, (*glob_at, "Expiry")
    if not (kind and kind.strip()):
        return BalancerSpec()
    native = OCELOT_BALANCERS.get(kind.strip().lower())
    if native is None:
        diag.error(
            kind_at,
            f"unknown load balancer {kind!r}: use NoLoadBalancer, RoundRobin, "
            "LeastConnection or CookieStickySessions",
        )
        return BalancerSpec()
    if native != "sticky_cookie":
        return BalancerSpec(kind=native)
    if expiry is not None and expiry < 0:
        diag.error(expiry_at, f"must be a positive number of milliseconds, got {expiry}")
        expiry = None
    return BalancerSpec(
        kind=native,
        key=key.strip() if key and key.strip() else DEFAULT_COOKIE,
        expiry=(DEFAULT_EXPIRY_MS if expiry is None else expiry) / 1000.0,
    )


@dataclass(frozen=True, slots=True)
class QoS:
    breaker: BreakerSpec | None
    timeout_ms: int | None
    """The per-attempt timeout (``TimeoutValue``/``Timeout``), when given and above 0."""
    timeout_at: Loc


def qos(route: OcelotRoute, loc: Loc, glob: GlobalConfiguration, diag: Diagnostics) -> QoS:
    own = route.QoSOptions
    shared = glob.QoSOptions
    applies = shared is not None and _applies(shared.RouteKeys, route.Key)
    own_at: Loc = (*loc, "QoSOptions")
    glob_at: Loc = ("GlobalConfiguration", "QoSOptions")
    pairs = (
        ("minimum", "ExceptionsAllowedBeforeBreaking", "MinimumThroughput"),
        ("duration", "DurationOfBreak", "BreakDuration"),
        ("timeout", "TimeoutValue", "Timeout"),
        ("ratio", "FailureRatio", "FailureRatio"),
        ("sampling", "SamplingDuration", "SamplingDuration"),
    )
    found: dict[str, tuple[float, Loc]] = {}
    sources: list[tuple[QoSModel, Loc]] = []
    if own is not None:
        sources.append((own, own_at))
    if shared is not None and applies:
        sources.append((shared, glob_at))
    for what, old, new in pairs:
        # Ocelot merges each name on its own, then prefers the old name: own old, global
        # old, own new, global new.
        for name in (old, new):
            for model, at in sources:
                value = getattr(model, name)
                if value is not None and what not in found:
                    found[what] = (value, (*at, name))
    for what in ("minimum", "duration", "timeout", "sampling"):
        if what in found and found[what][0] < 0:
            value, at = found[what]
            diag.error(at, f"must not be negative, got {value:g}")
            del found[what]
    timeout = found.get("timeout")
    timeout_ms = int(timeout[0]) if timeout is not None and timeout[0] > 0 else None
    timeout_at = timeout[1] if timeout is not None else own_at
    if timeout_ms is not None and not LOW_TIMEOUT_MS < timeout_ms < HIGH_TIMEOUT_MS:
        diag.warning(
            timeout_at,
            f"{timeout_ms} ms is outside ({LOW_TIMEOUT_MS}, {HIGH_TIMEOUT_MS}): "
            f"{DEFAULT_TIMEOUT_MS} ms is used, as in Ocelot",
        )
        timeout_ms = DEFAULT_TIMEOUT_MS
    minimum = found.get("minimum")
    ratio = found.get("ratio")
    # Ocelot's QoSOptions.UseQos: breaking, a ratio or a timeout asks for its handler, and
    # that handler always breaks (with 100 failures when nothing else is said).
    used = (
        (minimum is not None and minimum[0] > 0)
        or (ratio is not None and ratio[0] > 0)
        or timeout_ms is not None
    )
    if not used:
        return QoS(None, timeout_ms, timeout_at)
    throughput = DEFAULT_MINIMUM_THROUGHPUT
    if minimum is not None:
        if minimum[0] >= LOW_MINIMUM_THROUGHPUT:
            throughput = int(minimum[0])
        else:
            diag.warning(
                minimum[1],
                f"{minimum[0]:g} is below {LOW_MINIMUM_THROUGHPUT}: Ocelot (and propylon) "
                f"break after {DEFAULT_MINIMUM_THROUGHPUT} failures instead",
            )
    duration_ms = float(DEFAULT_BREAK_MS)
    duration = found.get("duration")
    if duration is not None:
        if duration[0] > LOW_BREAK_MS:
            duration_ms = duration[0]
        else:
            diag.warning(
                duration[1],
                f"{duration[0]:g} ms is not above {LOW_BREAK_MS}: Ocelot (and propylon) "
                f"break for {DEFAULT_BREAK_MS} ms instead",
            )
    failure_ratio: float | None = None
    sampling_ms = float(DEFAULT_SAMPLING_MS)
    if ratio is not None and ratio[0] > 0:
        failure_ratio = ratio[0]
        if ratio[0] > 1.0:
            diag.warning(
                ratio[1], f"{ratio[0]:g} is above 1: {DEFAULT_RATIO} is used, as in Ocelot"
            )
            failure_ratio = DEFAULT_RATIO
        sampling = found.get("sampling")
        if sampling is not None:
            if sampling[0] > LOW_SAMPLING_MS:
                sampling_ms = sampling[0]
            else:
                diag.warning(
                    sampling[1],
                    f"{sampling[0]:g} ms is not above {LOW_SAMPLING_MS}: "
                    f"{DEFAULT_SAMPLING_MS} ms is used, as in Ocelot",
                )
    return QoS(
        BreakerSpec(
            minimum_throughput=throughput,
            break_duration=duration_ms / 1000.0,
            failure_ratio=failure_ratio,
            sampling_duration=sampling_ms / 1000.0,
        ),
        timeout_ms,
        timeout_at,
    )
