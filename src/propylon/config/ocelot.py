"""Reader for Ocelot's ``ocelot.json`` / ``Routes.json`` (the second seed's format).

Values are read leniently the way .NET's binder reads them (``"Port": "8080"`` is a port), key
names case-insensitively (see ``ocelot_keys``). Semantics follow Ocelot's documentation:

- ``UpstreamHttpMethod`` empty means every method; names are case-insensitive.
- ``Priority`` defaults to 1; a ``/{anything}`` catch-all always gets 0 (hard-wired in Ocelot).
- ``DownstreamScheme`` falls back to ``GlobalConfiguration.DownstreamScheme``, then ``http``.
- Timeouts: ``QoSOptions.TimeoutValue`` (milliseconds) wins over the route's ``Timeout``
  (seconds), which wins over the global ``Timeout`` (seconds), else propylon's 30 seconds
  (Ocelot's own default is 90; a gateway that holds a request for 90 s by default holds
  too many of them when a service hangs). Zero means "not set", as in Ocelot.
- ``AddHeadersToRequest`` with ``Claims[name] > value`` (optionally ``> value[i] > delim``):
  the header is set from the verified token, and removed from every client request. Onto
  the identity header's name (``User``) it chooses the claim sent as the identity instead.
- ``LoadBalancerOptions`` and ``QoSOptions`` (route and global with ``RouteKeys``) become the
  route's balancer and circuit breaker (``ocelot_resilience``); without a balancer type,
  several ``DownstreamHostAndPorts`` are used round robin.
- ``SecurityOptions`` (route, else global) become the route's IP rules; ``Cors`` (route,
  else global) is propylon's extension (``ocelot_access``). Every ``OPTIONS`` request skips
  authentication and authorization, as Ocelot's middlewares do (``anonymous_options``).
- ``RateLimitOptions``, route and global, merge as in Ocelot 25 (``ocelot_rate_limit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from propylon.config import (
    claim_headers,
    dns,
    ocelot_access,
    ocelot_rate_limit,
    ocelot_resilience,
    templates,
    values,
)
from propylon.config.cors import attach
from propylon.config.diagnostics import Diagnostics, Loc, kind_of
from propylon.config.document import Document
from propylon.config.ip_rules import effective
from propylon.config.model import (
    IDENTITY_HEADER,
    AuthRequirement,
    ClaimHeader,
    CorsPolicy,
    DownstreamHost,
    IpRules,
    OcelotRateLimit,
    RouteSpec,
)
from propylon.config.ocelot_keys import FILE, normalise
from propylon.config.ocelot_models import (
    AuthenticationModel,
    GlobalConfiguration,
    OcelotRoute,
)
from propylon.config.reader import ProviderRef, ReadResult

DEFAULT_TIMEOUT = RouteSpec(source="", upstream_path="/", downstream_hosts=()).timeout


def read_ocelot(document: Document) -> ReadResult:
    spelling: dict[Loc, str] = {}
    diag = Diagnostics(document.file, spelling)
    if not isinstance(document.data, Mapping):
        diag.error((), f"an Ocelot file is a JSON object, got {kind_of(document.data)}")
        return ReadResult((), tuple(diag.problems))
    data = normalise(document.data, FILE, (), spelling, diag)
    glob = _read_global(data.get("GlobalConfiguration"), diag)
    at = ("GlobalConfiguration",)
    resolver = dns.read_dns(glob.Dns, (*at, "Dns"), diag, dns.OCELOT_KEYS)
    defaults = (
        ocelot_access.security_options(glob.SecurityOptions, at, diag),
        ocelot_access.cors(glob.Cors, at, diag),
    )
    raw_routes = data.get("Routes")
    if raw_routes is None:
        diag.error(("Routes",), "required key is missing (no routes defined)")
        raw_routes = []
    elif not isinstance(raw_routes, list):
        diag.error(("Routes",), f"must be a list of routes, got {kind_of(raw_routes)}")
        raw_routes = []
    elif not raw_routes:
        diag.warning(("Routes",), "no routes: every request will be answered 404")
    routes: list[RouteSpec] = []
    refs: list[ProviderRef] = []
    request_ids: list[tuple[Loc, str]] = []
    from_global: list[tuple[str, OcelotRateLimit]] = []
    for index, raw in enumerate(raw_routes):
        loc: Loc = ("Routes", index)
        try:
            route = OcelotRoute.model_validate(raw)
        except ValidationError as exc:
            diag.validation(exc, loc)
            continue
        spec = _compile_route(route, loc, glob, diag, refs, defaults)
        if route.RequestIdKey:
            request_ids.append(((*loc, "RequestIdKey"), route.RequestIdKey))
        if spec is not None:
            routes.append(spec)
            if spec.ocelot_rate_limit is not None and route.RateLimitOptions is None:
                from_global.append((spec.source, spec.ocelot_rate_limit))
    ocelot_rate_limit.trap_warning(from_global, diag)
    if resolver.discover_all:
        # Ocelot has no per-route switch: the global one turns discovery on for every route.
        routes = [replace(spec, discovery=resolver.interval) for spec in routes]
    base_url = _base_url(glob, diag)
    request_id_header = _request_id_header(glob, request_ids, diag)
    return ReadResult(
        routes=tuple(routes),
        problems=tuple(diag.problems),
        provider_refs=tuple(refs),
        base_url=base_url,
        request_id_header=request_id_header,
        dns=resolver,
    )


def _read_global(raw: Any, diag: Diagnostics) -> GlobalConfiguration:
    if raw is None:
        return GlobalConfiguration()
    try:
        glob = GlobalConfiguration.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, ("GlobalConfiguration",))
        return GlobalConfiguration()
    if glob.Timeout is not None and glob.Timeout < 0:
        diag.error(
            ("GlobalConfiguration", "Timeout"),
            f"must be a positive number of seconds (0 = default), got {glob.Timeout}",
        )
    return glob


def _base_url(glob: GlobalConfiguration, diag: Diagnostics) -> str | None:
    if not glob.BaseUrl:
        return None
    try:
        values.http_url(glob.BaseUrl, what="BaseUrl")
    except ValueError as exc:
        diag.error(("GlobalConfiguration", "BaseUrl"), str(exc))
        return None
    return glob.BaseUrl


def _request_id_header(
    glob: GlobalConfiguration, per_route: list[tuple[Loc, str]], diag: Diagnostics
) -> str | None:
    """One header for the whole gateway: the global key, else the routes' (if they agree)."""
    chosen: str | None = None
    chosen_at: Loc = ("GlobalConfiguration", "RequestIdKey")
    if glob.RequestIdKey:
        chosen = glob.RequestIdKey
    elif per_route:
        chosen_at, chosen = per_route[0]
    if chosen is None:
        return None
    try:
        values.header_name(chosen)
    except ValueError as exc:
        diag.error(chosen_at, str(exc))
        return None
    for loc, key in per_route:
        if key.lower() != chosen.lower():
            diag.warning(
                loc,
                f"propylon uses one request id header for every route; "
                f"{chosen!r} (from {diag.path(chosen_at)}) is used here too",
            )
    return chosen


def _compile_route(
    route: OcelotRoute,
    loc: Loc,
    glob: GlobalConfiguration,
    diag: Diagnostics,
    refs: list[ProviderRef],
    defaults: tuple[IpRules | None, CorsPolicy | None],
) -> RouteSpec | None:
    errors_before = sum(p.severity == "error" for p in diag.problems)
    upstream = route.UpstreamPathTemplate
    names: list[str] | None = None
    try:
        names = templates.check_upstream(upstream)
    except ValueError as exc:
        diag.error((*loc, "UpstreamPathTemplate"), str(exc))
    try:
        # with a broken upstream template, only the downstream template's own shape is judged
        templates.check_downstream(
            route.DownstreamPathTemplate,
            names if names is not None else templates.placeholders(route.DownstreamPathTemplate),
            f"UpstreamPathTemplate {upstream!r}",
        )
    except ValueError as exc:
        diag.error((*loc, "DownstreamPathTemplate"), str(exc))
    methods: set[str] = set()
    for i, method in enumerate(route.UpstreamHttpMethod):
        try:
            methods.add(values.http_method(method))
        except ValueError as exc:
            diag.error((*loc, "UpstreamHttpMethod", i), str(exc))
    scheme = _scheme(route, loc, glob, diag)
    hosts = _hosts(route, loc, glob, diag)
    auth = _auth(route, loc, diag, refs)
    identity_claim, from_claims = _claim_headers(route, loc, auth, diag)
    upstream_host = None
    if route.UpstreamHost:
        try:
            upstream_host = values.upstream_host(route.UpstreamHost)
        except ValueError as exc:
            diag.error((*loc, "UpstreamHost"), str(exc))
    balancer = ocelot_resilience.balancer(route, loc, glob, diag)
    qos = ocelot_resilience.qos(route, loc, glob, diag)
    timeout = _timeout(route, loc, glob, diag, qos)
    rate_limit = ocelot_rate_limit.effective(
        route.RateLimitOptions, route.Key, loc, glob.RateLimitOptions, diag
    )
    priority = route.Priority if route.Priority is not None else 1
    if templates.is_catch_all(upstream):
        if route.Priority not in (None, 0):
            diag.warning(
                (*loc, "Priority"),
                f"ignored: a catch-all {upstream!r} always has priority 0, as in Ocelot",
            )
        priority = 0
    ip_rules = effective(
        ocelot_access.security_options(route.SecurityOptions, loc, diag), defaults[0]
    )
    own_cors = ocelot_access.cors(route.Cors, loc, diag)
    served, cors = attach(frozenset(methods), own_cors if route.Cors is not None else defaults[1])
    if sum(p.severity == "error" for p in diag.problems) > errors_before:
        return None
    return RouteSpec(
        source=diag.path(loc),
        upstream_path=upstream,
        downstream_hosts=hosts,
        methods=served,
        upstream_host=upstream_host,
        case_sensitive=route.RouteIsCaseSensitive,
        priority=priority,
        downstream_scheme=scheme,
        downstream_path=route.DownstreamPathTemplate,
        auth=auth,
        timeout=timeout,
        name=route.Key.strip() if route.Key and route.Key.strip() else None,
        claim_headers=from_claims,
        identity_claim=identity_claim,
        ip_rules=ip_rules,
        cors=cors,
        # Ocelot's AuthenticationMiddleware and AuthorizationMiddleware let every OPTIONS
        # request through (its issue 633: CORS preflights carry no token).
        anonymous_options=auth is not None,
        ocelot_rate_limit=rate_limit,
        balancer=balancer,
        breaker=qos.breaker,
    )


def _scheme(route: OcelotRoute, loc: Loc, glob: GlobalConfiguration, diag: Diagnostics) -> str:
    if route.DownstreamScheme:
        where, given = (*loc, "DownstreamScheme"), route.DownstreamScheme
    elif glob.DownstreamScheme:
        where, given = ("GlobalConfiguration", "DownstreamScheme"), glob.DownstreamScheme
    else:
        return "http"
    try:
        return values.scheme(given)
    except ValueError as exc:
        diag.error(where, str(exc))
        return "http"


def _hosts(
    route: OcelotRoute, loc: Loc, glob: GlobalConfiguration, diag: Diagnostics
) -> tuple[DownstreamHost, ...]:
    where = (*loc, "DownstreamHostAndPorts")
    if not route.DownstreamHostAndPorts:
        diag.error(where, "at least one {Host, Port} is required")
        return ()
    hosts: list[DownstreamHost] = []
    for i, entry in enumerate(route.DownstreamHostAndPorts):
        try:
            host = values.host_name(entry.Host)
        except ValueError as exc:
            diag.error((*where, i, "Host"), str(exc))
            continue
        try:
            hosts.append(DownstreamHost(host, values.port(entry.Port)))
        except ValueError as exc:
            diag.error((*where, i, "Port"), str(exc))
    return tuple(hosts)


def _auth(
    route: OcelotRoute, loc: Loc, diag: Diagnostics, refs: list[ProviderRef]
) -> AuthRequirement | None:
    options = route.AuthenticationOptions or AuthenticationModel()
    at = (*loc, "AuthenticationOptions")
    providers: list[str] = []
    if options.AuthenticationProviderKey and options.AuthenticationProviderKey.strip():
        providers.append(options.AuthenticationProviderKey.strip())
        refs.append(ProviderRef(diag.path((*at, "AuthenticationProviderKey")), providers[-1]))
    for i, key in enumerate(options.AuthenticationProviderKeys):
        if key.strip() and key.strip() not in providers:
            providers.append(key.strip())
            refs.append(ProviderRef(diag.path((*at, "AuthenticationProviderKeys", i)), key.strip()))
    scopes = tuple(s for s in options.AllowedScopes if s.strip())
    claims = tuple(route.RouteClaimsRequirement.items())
    if not providers:
        # Ocelot would skip authentication and then refuse (claims) or ignore (scopes) the
        # requirement; a requirement nobody can check is a mistake worth stopping for.
        if scopes:
            diag.error(
                (*at, "AllowedScopes"),
                "scopes need authentication: set AuthenticationOptions.AuthenticationProviderKey",
            )
        if claims:
            diag.error(
                (*loc, "RouteClaimsRequirement"),
                "claims need authentication: set AuthenticationOptions.AuthenticationProviderKey",
            )
        return None
    return AuthRequirement(
        providers=tuple(providers), allowed_scopes=scopes, required_claims=claims
    )


def _claim_headers(
    route: OcelotRoute, loc: Loc, auth: AuthRequirement | None, diag: Diagnostics
) -> tuple[ClaimHeader | None, tuple[ClaimHeader, ...]]:
    """The route's identity claim (None: the ``sub``) and its other claim headers."""
    found: list[tuple[Loc, ClaimHeader]] = []
    at = (*loc, "AddHeadersToRequest")
    for name, expression in route.AddHeadersToRequest.items():
        try:
            found.append(((*at, name), claim_headers.from_ocelot(name, expression)))
        except ValueError as exc:
            diag.error((*at, name), str(exc))
    if found and auth is None:
        diag.error(
            at,
            "headers from claims need authentication: set "
            "AuthenticationOptions.AuthenticationProviderKey",
        )
    # Ocelot files have no identity header setting: it is always propylon's default.
    return claim_headers.assign(found, IDENTITY_HEADER, diag)


def _timeout(
    route: OcelotRoute,
    loc: Loc,
    glob: GlobalConfiguration,
    diag: Diagnostics,
    qos: ocelot_resilience.QoS,
) -> float:
    if route.Timeout is not None and route.Timeout < 0:
        diag.error(
            (*loc, "Timeout"),
            f"must be a positive number of seconds (0 = default), got {route.Timeout}",
        )
    if qos.timeout_ms is not None:
        return qos.timeout_ms / 1000.0
    if route.Timeout is not None and route.Timeout > 0:
        return float(route.Timeout)
    if glob.Timeout is not None and glob.Timeout > 0:
        return float(glob.Timeout)
    return DEFAULT_TIMEOUT
