"""Ocelot's key vocabulary, and the step that makes its spelling canonical.

Ocelot binds JSON through .NET's configuration binder, which ignores the case of property
names, so ``upstreamPathTemplate`` and ``UPSTREAMPATHTEMPLATE`` are the same key. ``normalise``
rewrites every known key to its canonical spelling (recording the original for messages) and
drops, with a warning, keys propylon does not act on: Ocelot features not implemented yet,
and keys that are not Ocelot keys at all. A not-implemented key whose value asks for nothing
(``{}``, ``[]``, ``""``, ``0``, ``false``, ``null``, a cache with ``TtlSeconds: 0``) is
accepted silently: Ocelot's own "everything
available" template writes them, and ignoring them changes nothing.

An unknown key is a warning that suggests the key it resembles (``near_miss``), except when
it resembles a key that protects or limits a route (``PROTECTIVE``), or is such a key in the
wrong object (``AllowedScopes`` beside ``AuthenticationOptions`` instead of inside it): then
it is an error, because as written the route would be served as if the key were absent,
which for ``AuthenticationOptions`` means public.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from propylon.config import near_miss
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
    inspected: Mapping[str, Keys] = field(default_factory=dict)
    """Unimplemented keys whose objects are still searched for misspelt protective keys."""
    dormant: Callable[[Mapping[Any, Any]], bool] | None = None
    """An object of these keys that asks for nothing (a rate limiter with
    ``EnableRateLimiting: false``): misspelt keys inside it are not reported."""

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

SECURITY_OPTIONS = Keys(
    supported={"IPAllowedList": None, "IPBlockedList": None, "ExcludeAllowedFromBlocked": None},
)

CORS = Keys(
    # propylon's extension (Ocelot's binder ignores it): see docs/configuration.md
    supported={
        "AllowedOrigins": None,
        "AllowedMethods": None,
        "AllowedHeaders": None,
        "ExposedHeaders": None,
        "AllowCredentials": None,
        "MaxAge": None,
    },
)

DNS = Keys(
    # propylon's extension (Ocelot's binder ignores it): DNS discovery, config/dns.py
    supported={
        "Nameservers": None,
        "Interval": None,
        "MinInterval": None,
        "Timeout": None,
        "Discovery": None,
    },
)


def _field(value: Mapping[Any, Any], name: str) -> Any:
    for key, item in value.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return item
    return None


_RATE_LIMIT_KEYS: dict[str, Keys | None] = {
    # Ocelot 25 reads the old names too, as separate keys (the old one wins when both are
    # given): they are not aliases.
    name: None
    for name in (
        "ClientIdHeader",
        "ClientWhitelist",
        "EnableRateLimiting",
        "EnableHeaders",
        "DisableRateLimitHeaders",
        "Limit",
        "Period",
        "PeriodTimespan",
        "Wait",
        "StatusCode",
        "HttpStatusCode",
        "QuotaMessage",
        "QuotaExceededMessage",
        "KeyPrefix",
        "RateLimitCounterPrefix",
    )
}


def _disabled(value: Mapping[Any, Any]) -> bool:
    enabled = _field(value, "EnableRateLimiting")
    return enabled is False or str(enabled).lower() == "false"


RATE_LIMIT = Keys(supported=_RATE_LIMIT_KEYS, dormant=_disabled)

GLOBAL_RATE_LIMIT = Keys(supported={**_RATE_LIMIT_KEYS, "RouteKeys": None}, dormant=_disabled)

_QOS_KEYS: dict[str, Keys | None] = {
    # Both generations are separate keys in Ocelot 25 (the old one wins when both are
    # given), not aliases.
    name: None
    for name in (
        "ExceptionsAllowedBeforeBreaking",
        "MinimumThroughput",
        "DurationOfBreak",
        "BreakDuration",
        "TimeoutValue",
        "Timeout",
        "FailureRatio",
        "SamplingDuration",
    )
}

QOS = Keys(
    supported=_QOS_KEYS,
    unimplemented=frozenset({"TimeoutStrategy"}),
)

GLOBAL_QOS = Keys(supported={**_QOS_KEYS, "RouteKeys": None}, unimplemented=QOS.unimplemented)

LOAD_BALANCER = Keys(supported={"Type": None, "Key": None, "Expiry": None})

GLOBAL_LOAD_BALANCER = Keys(
    supported={"Type": None, "Key": None, "Expiry": None, "RouteKeys": None}
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
        "SecurityOptions": SECURITY_OPTIONS,
        "Cors": CORS,
        "RateLimitOptions": RATE_LIMIT,
    },
    unimplemented=_ROUTE_UNIMPLEMENTED,
    aliases={"rerouteiscasesensitive": "RouteIsCaseSensitive"},
    hints={
        "dangerousacceptanyservercertificatevalidator": NOT_IMPLEMENTED
        + ": upstream TLS certificates are always verified",
        "servicename": "service discovery is "
        + NOT_IMPLEMENTED
        + "; list DownstreamHostAndPorts instead",
        "delegatinghandlers": "they name .NET types, which propylon cannot load; write the"
        " handler as a Python plugin (native config 'plugins:', docs/plugins.md)",
    },
)

GLOBAL = Keys(
    supported={
        "BaseUrl": None,
        "RequestIdKey": None,
        "DownstreamScheme": None,
        "Timeout": None,
        "LoadBalancerOptions": GLOBAL_LOAD_BALANCER,
        "QoSOptions": GLOBAL_QOS,
        "SecurityOptions": SECURITY_OPTIONS,
        "Cors": CORS,
        "RateLimitOptions": GLOBAL_RATE_LIMIT,
        "Dns": DNS,
    },
    unimplemented=frozenset(
        {
            "ServiceDiscoveryProvider",
            "HttpHandlerOptions",
            "DownstreamHttpVersion",
            "DownstreamHttpVersionPolicy",
            "CacheOptions",
            "Metadata",
            "MetadataOptions",
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


PROTECTIVE: Mapping[str, str] = {
    "AuthenticationOptions": "a route",
    "AuthenticationProviderKey": "AuthenticationOptions",
    "AuthenticationProviderKeys": "AuthenticationOptions",
    "AllowedScopes": "AuthenticationOptions",
    "RouteClaimsRequirement": "a route",
    "SecurityOptions": "a route",
    "IPAllowedList": "SecurityOptions",
    "IPBlockedList": "SecurityOptions",
    "RateLimitOptions": "a route",
    "ClientWhitelist": "RateLimitOptions",
}
"""Keys that protect or limit a route, and the object each belongs in. Missing one of them
leaves a route more open than its author wrote; so a key that looks like one is an error."""


LOOSENING: frozenset[str] = frozenset(
    {"RequiredRole", "ScopeKey", "RoleKey", "PolicyName", "AuthenticationOptions"}
)
"""Not-implemented keys that, ignored, leave a route more open than the file reads (an
authorization rule not enforced; ``GlobalConfiguration.AuthenticationOptions``, which would
protect every route): their warnings are marked security warnings (``Problem.security``),
which ``run`` logs so they stand out. Keys ignored in the safe direction
(``AllowAnonymous``, ``DangerousAcceptAnyServerCertificateValidator``) are not marked."""


def _known(keys: Keys) -> list[str]:
    return [*keys.supported, *sorted(keys.unimplemented)]


def _unknown(name: str, keys: Keys, loc: Loc, diag: Diagnostics, *, quiet: bool) -> None:
    """Report unknown key ``name``: an error when it resembles a protective key (here or in
    another object), else (unless ``quiet``) a warning with the key it resembles."""
    here = _known(keys)
    guess = near_miss.closest(name, [*here, *PROTECTIVE], prefer=PROTECTIVE)
    if guess is not None and guess in PROTECTIVE:
        # Either way the route would be served as if the key were absent: for
        # AuthenticationOptions, that is public.
        unprotected = f"the route is served as if it had no {guess}"
        if guess in here:
            message = f"unknown key, a near miss of {guess}: as written it is ignored and "
            message += f"{unprotected}; did you mean {guess}?"
        elif near_miss.fold(name) == near_miss.fold(guess):
            message = f"{guess} belongs in {PROTECTIVE[guess]}: here it is ignored and "
            message += unprotected
        else:
            message = f"unknown key, a near miss of {guess}, which belongs in "
            message += f"{PROTECTIVE[guess]}: here it is ignored and {unprotected}"
        diag.error((*loc, name), message)
        return
    if quiet:
        return
    hint = f" (did you mean {guess}?)" if guess is not None else ""
    diag.warning((*loc, name), f"unknown key; ignored{hint}")


def _inspect(value: object, keys: Keys, loc: Loc, diag: Diagnostics) -> None:
    """Search an ignored object for misspelt protective keys (nothing else is reported)."""
    if not isinstance(value, Mapping):
        return
    for written in value:
        name = str(written)
        if keys.canonical(name) is None:
            _unknown(name, keys, loc, diag, quiet=True)


def _cache_active(value: object) -> bool:
    if not isinstance(value, Mapping):
        return not is_inert(value)
    ttl = _field(value, "TtlSeconds")
    return isinstance(ttl, int | float) and ttl > 0


_ACTIVE: Mapping[str, Callable[[object], bool]] = {
    "CacheOptions": _cache_active,
    "FileCacheOptions": _cache_active,
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
            _unknown(name, keys, loc, diag, quiet=False)
            continue
        if canonical in keys.unimplemented:
            active = _ACTIVE.get(canonical)
            if active(value) if active is not None else not is_inert(value):
                diag.warning(
                    (*loc, name),
                    keys.hints.get(canonical.lower(), NOT_IMPLEMENTED),
                    security=canonical in LOOSENING,
                )
                if canonical in keys.inspected:
                    _inspect(value, keys.inspected[canonical], (*loc, name), diag)
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
            quiet = nested.dormant is not None and nested.dormant(value)
            # A dormant object's slips cannot leave anything open: they are not reported.
            value = normalise(
                value, nested, here, spelling, Diagnostics(diag.file) if quiet else diag
            )
        elif nested is not None and isinstance(value, list):
            value = [
                normalise(item, nested, (*here, i), spelling, diag)
                if isinstance(item, Mapping)
                else item
                for i, item in enumerate(value)
            ]
        out[canonical] = value
    return out
