"""Ocelot's key vocabulary, and the step that makes its spelling canonical.

Ocelot binds JSON through .NET's configuration binder, which ignores the case of property
names, so ``upstreamPathTemplate`` and ``UPSTREAMPATHTEMPLATE`` are the same key. ``normalise``
rewrites every known key to its canonical spelling (recording the original for messages) and
drops, with a warning, keys propylon does not act on: Ocelot features not implemented yet,
and keys that are not Ocelot keys at all. A not-implemented key whose value asks for nothing
(``{}``, ``[]``, ``""``, ``0``, ``false``, ``null``, a cache with ``TtlSeconds: 0``, rate
limiting with ``EnableRateLimiting: false``) is accepted silently: Ocelot's own "everything
available" template writes them, and ignoring them changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from propylon.config.diagnostics import Diagnostics, Loc

NOT_IMPLEMENTED = "not implemented by propylon yet; ignored"


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys of one kind of Ocelot object."""

    supported: Mapping[str, Keys | None]
    """Canonical name -> the keys of the nested object (or list of objects), None for leaves."""
    unimplemented: frozenset[str] = frozenset()
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Older names Ocelot still reads (lower case) -> canonical name."""
    hints: Mapping[str, str] = field(default_factory=dict)

    def canonical(self, written: str) -> str | None:
        lower = written.lower()
        for name in (*self.supported, *self.unimplemented):
            if name.lower() == lower:
                return name
        return self.aliases.get(lower)


HOST_AND_PORT = Keys(supported={"Host": None, "Port": None})

AUTHENTICATION = Keys(
    supported={
        "AuthenticationProviderKey": None,
        "AuthenticationProviderKeys": None,
        "AllowedScopes": None,
    },
    unimplemented=frozenset(
        {"RequiredRole", "ScopeKey", "RoleKey", "PolicyName", "AllowAnonymous"}
    ),
)

QOS = Keys(
    supported={"TimeoutValue": None},
    unimplemented=frozenset(
        {
            "ExceptionsAllowedBeforeBreaking",
            "DurationOfBreak",
            "TimeoutStrategy",
            "BreakDuration",
            "FailureRatio",
            "MinimumThroughput",
            "SamplingDuration",
        }
    ),
    hints={"exceptionsallowedbeforebreaking": "circuit breaking is " + NOT_IMPLEMENTED},
)

LOAD_BALANCER = Keys(
    supported={"Type": None},
    unimplemented=frozenset({"Key", "Expiry"}),
)

_ROUTE_UNIMPLEMENTED = frozenset(
    {
        "AddClaimsToRequest",
        "AddQueriesToRequest",
        "ChangeDownstreamPathTemplate",
        "DangerousAcceptAnyServerCertificateValidator",
        "DelegatingHandlers",
        "DownstreamHeaderTransform",
        "DownstreamHttpMethod",
        "DownstreamHttpVersion",
        "DownstreamHttpVersionPolicy",
        "CacheOptions",
        "FileCacheOptions",
        "HttpHandlerOptions",
        "Metadata",
        "RateLimitOptions",
        "SecurityOptions",
        "ServiceName",
        "ServiceNamespace",
        "UpstreamHeaderTemplates",
        "UpstreamHeaderTransform",
        "ConnectionClose",
    }
)

ROUTE = Keys(
    supported={
        "UpstreamPathTemplate": None,
        "UpstreamHttpMethod": None,
        "DownstreamPathTemplate": None,
        "DownstreamScheme": None,
        "DownstreamHostAndPorts": HOST_AND_PORT,
        "AuthenticationOptions": AUTHENTICATION,
        "RouteClaimsRequirement": None,
        "AddHeadersToRequest": None,
        "Priority": None,
        "RouteIsCaseSensitive": None,
        "UpstreamHost": None,
        "Timeout": None,
        "Key": None,
        "RequestIdKey": None,
        "QoSOptions": QOS,
        "LoadBalancerOptions": LOAD_BALANCER,
        "LoadBalancer": None,
    },
    unimplemented=_ROUTE_UNIMPLEMENTED,
    aliases={"rerouteiscasesensitive": "RouteIsCaseSensitive"},
    hints={
        "dangerousacceptanyservercertificatevalidator": NOT_IMPLEMENTED
        + ": upstream TLS certificates are always verified",
        "servicename": "service discovery is "
        + NOT_IMPLEMENTED
        + "; list DownstreamHostAndPorts instead",
    },
)

GLOBAL = Keys(
    supported={
        "BaseUrl": None,
        "RequestIdKey": None,
        "DownstreamScheme": None,
        "Timeout": None,
        "LoadBalancerOptions": LOAD_BALANCER,
    },
    unimplemented=frozenset(
        {
            "ServiceDiscoveryProvider",
            "RateLimitOptions",
            "QoSOptions",
            "HttpHandlerOptions",
            "DownstreamHttpVersion",
            "DownstreamHttpVersionPolicy",
            "CacheOptions",
            "Metadata",
            "MetadataOptions",
            "SecurityOptions",
            "UpstreamHeaderTransform",
            "DownstreamHeaderTransform",
            "ConnectionClose",
            "AuthenticationOptions",
        }
    ),
)

FILE = Keys(
    supported={"Routes": ROUTE, "GlobalConfiguration": GLOBAL},
    unimplemented=frozenset({"DynamicRoutes", "Aggregates"}),
    aliases={"reroutes": "Routes"},
)


def _field(value: Mapping[Any, Any], name: str) -> Any:
    for key, item in value.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return item
    return None


def _cache_active(value: object) -> bool:
    if not isinstance(value, Mapping):
        return not is_inert(value)
    ttl = _field(value, "TtlSeconds")
    return isinstance(ttl, int | float) and ttl > 0


def _rate_limit_active(value: object) -> bool:
    if not isinstance(value, Mapping):
        return not is_inert(value)
    enabled = _field(value, "EnableRateLimiting")
    if enabled is not None:
        return enabled is True or str(enabled).lower() == "true"
    return not is_inert(value)


_ACTIVE: Mapping[str, Callable[[object], bool]] = {
    "CacheOptions": _cache_active,
    "FileCacheOptions": _cache_active,
    "RateLimitOptions": _rate_limit_active,
}


def is_inert(value: object) -> bool:
    if value is None or value is False or value == "" or value == 0:
        return True
    if isinstance(value, Mapping):
        return all(is_inert(item) for item in value.values())
    if isinstance(value, list):
        return not value
    return False


def normalise(
    raw: Mapping[Any, Any],
    keys: Keys,
    loc: Loc,
    spelling: dict[Loc, str],
    diag: Diagnostics,
) -> dict[str, Any]:
    """``raw`` with canonical key names; unimplemented and unknown keys dropped with warnings."""
    out: dict[str, Any] = {}
    for written, value in raw.items():
        name = str(written)
        canonical = keys.canonical(name)
        if canonical is None:
            diag.warning((*loc, name), "unknown key; ignored")
            continue
        if canonical in keys.unimplemented:
            active = _ACTIVE.get(canonical)
            if active(value) if active is not None else not is_inert(value):
                diag.warning((*loc, name), keys.hints.get(canonical.lower(), NOT_IMPLEMENTED))
            continue
        here = (*loc, canonical)
        if canonical in out:
            diag.error(
                (*loc, name),
                f"{spelling[here]!r} is given too (Ocelot keys are "
                "case-insensitive, and old and new names mean the same key)",
            )
            continue
        spelling[here] = name
        nested = keys.supported[canonical]
        if nested is not None and isinstance(value, Mapping):
            value = normalise(value, nested, here, spelling, diag)
        elif nested is not None and isinstance(value, list):
            value = [
                normalise(item, nested, (*here, i), spelling, diag)
                if isinstance(item, Mapping)
                else item
                for i, item in enumerate(value)
            ]
        out[canonical] = value
    return out
