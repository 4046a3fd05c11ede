"""Reader for propylon's own format (YAML or JSON, snake_case; see docs/configuration.md).

Unlike the two compatibility formats, an unknown key here is an error, not a warning: this
format is ours, and a misspelt ``auth`` must not quietly leave a route public.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError

from propylon.config import (
    assertion,
    claim_headers,
    dns,
    native_resilience,
    near_miss,
    templates,
    values,
)
from propylon.config.access_log import read_access_log
from propylon.config.admin import read_admin
from propylon.config.cors import attach
from propylon.config.diagnostics import Diagnostics, Loc, kind_of
from propylon.config.document import Document
from propylon.config.ip_rules import effective
from propylon.config.model import (
    IDENTITY_HEADER,
    ClaimHeader,
    CorsPolicy,
    DnsSpec,
    DownstreamHost,
    IpRules,
    RateLimitPolicy,
    RetrySpec,
    RouteSpec,
)
from propylon.config.native_access import OFF, read_cors, read_ip_rules
from propylon.config.native_rate_limits import read_rate_limits, read_state
from propylon.config.native_settings import (
    AuthSection,
    RouteAssertion,
    Strict,
    StrList,
    auth_requirement,
    read_assertion,
    read_forwarding,
    read_limits,
    read_providers,
    read_stats,
)
from propylon.config.plugin_specs import read_plugins
from propylon.config.reader import ProviderRef, ReadResult
from propylon.config.tls import read_tls
from propylon.config.tracing import read_tracing

VERSION = 1
TOP_LEVEL = (
    "propylon",
    "base_url",
    "identity_header",
    "request_id_header",
    "trusted_proxies",
    "limits",
    "stats",
    "forwarding",
    "tls",
    "auth_providers",
    "plugins",
    "ip_rules",
    "cors",
    "state",
    "rate_limits",
    "retries",
    "assertion",
    "admin",
    "tracing",
    "dns",
    "access_log",
    "routes",
)
DEFAULT_TIMEOUT = RouteSpec(source="", upstream_path="/", downstream_hosts=()).timeout


class _Top(Strict):
    propylon: int = VERSION
    base_url: str | None = None
    identity_header: str = IDENTITY_HEADER
    request_id_header: str = "X-Request-Id"
    trusted_proxies: StrList = []


class _Downstream(Strict):
    scheme: str = "http"
    hosts: StrList
    path: str | None = None
    path_prefix: str = ""
    # Checked by native_resilience, which names every problem with its key path.
    balancer: Any = None
    ejection: Any = None
    health_check: Any = None
    discovery: Any = None


class _Route(Strict):
    name: str | None = None
    methods: StrList = []
    path: str | None = None
    path_regex: str | None = None
    upstream_host: str | None = None
    case_sensitive: bool = False
    priority: int | None = None
    timeout: Annotated[float, Field(allow_inf_nan=False)] = DEFAULT_TIMEOUT
    downstream: _Downstream
    auth: AuthSection | None = None
    claim_headers: dict[str, str] = {}
    allow_underscores: bool | None = None
    plugins: StrList = []
    ip_rules: object = None
    cors: object = None
    anonymous_options: bool = False
    # Checked by native_rate_limits, which names every problem with its key path.
    rate_limits: Any = None
    assertion: bool | RouteAssertion | None = None
    circuit_breaker: Any = None
    retries: Any = None


def read_native(document: Document, env: Mapping[str, str]) -> ReadResult:
    diag = Diagnostics(document.file)
    data = document.data
    if not isinstance(data, Mapping):
        diag.error((), f"a propylon config is a mapping, got {kind_of(data)}")
        return ReadResult((), tuple(diag.problems))
    for key in data:
        if key not in TOP_LEVEL:
            guess = near_miss.closest(str(key), TOP_LEVEL)
            hint = f"did you mean {guess}?" if guess else f"expected one of {', '.join(TOP_LEVEL)}"
            diag.error((str(key),), f"unknown key; {hint}")
    top = _read_top(data, diag)
    refs: list[ProviderRef] = []
    base_dir = Path(document.file).resolve().parent
    providers = read_providers(data.get("auth_providers"), diag, env, base_dir)
    limits = read_limits(data.get("limits"), diag)
    stats = read_stats(data.get("stats"), diag, refs)
    forwarding = read_forwarding(data.get("forwarding"), diag)
    plugins = read_plugins(data.get("plugins"), diag)
    tls = read_tls(data.get("tls"), diag, base_dir)
    admin = read_admin(data.get("admin"), diag)
    tracing = read_tracing(data.get("tracing"), diag)
    access_log = read_access_log(data.get("access_log"), diag)
    state = read_state(data.get("state"), diag, env)
    glob_ip = read_ip_rules(data.get("ip_rules"), ("ip_rules",), diag)
    glob_cors = read_cors(data.get("cors"), ("cors",), diag, route=False)
    resolver = dns.read_dns(data.get("dns"), ("dns",), diag)
    retry_default = native_resilience.retries(data.get("retries"), ("retries",), diag, RetrySpec())
    defaults = _Defaults(
        glob_ip,
        glob_cors if isinstance(glob_cors, CorsPolicy) else None,
        resolver,
        retry_default,
    )
    limit_defaults = read_rate_limits(
        data.get("rate_limits"), ("rate_limits",), diag, per_route=False
    )
    inherits: set[str] = set()
    signing = read_assertion(data.get("assertion"), diag, base_dir)
    # On when the block is there, even if it has errors: those are reported already, and
    # the routes' own assertion keys are then judged against what was meant.
    signs = data.get("assertion") is not None
    routes = _read_routes(
        data.get("routes"), diag, refs, top.identity_header, defaults, inherits, signs
    )
    routes = _apply_default_limits(routes, inherits, limit_defaults or (), diag)
    _check_plugin_names(data.get("routes"), data.get("plugins"), diag)
    raw_providers = data.get("auth_providers")
    attempted = (
        frozenset(str(name) for name in raw_providers)
        if isinstance(raw_providers, Mapping)
        else frozenset()
    )
    return ReadResult(
        routes=routes,
        problems=tuple(diag.problems),
        provider_refs=tuple(refs),
        providers=providers,
        attempted_providers=attempted,
        base_url=top.base_url,
        request_id_header=top.request_id_header,
        identity_header=top.identity_header,
        trusted_proxies=tuple(top.trusted_proxies),
        limits=limits,
        stats=stats,
        forwarding=forwarding,
        plugins=plugins,
        tls=tls,
        state=state,
        assertion=signing,
        admin=admin,
        tracing=tracing,
        dns=resolver,
        access_log=access_log,
    )


def _check_plugin_names(raw_routes: object, raw_plugins: object, diag: Diagnostics) -> None:
    """Every name a route lists is defined under ``plugins`` (definitions with errors are
    reported there, not again here)."""
    if not isinstance(raw_routes, list):
        return
    defined = {str(k) for k in raw_plugins} if isinstance(raw_plugins, Mapping) else set()
    for index, item in enumerate(raw_routes):
        names = item.get("plugins") if isinstance(item, Mapping) else None
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list):
            continue
        for i, name in enumerate(names):
            if isinstance(name, str) and name not in defined:
                guess = near_miss.closest(name, sorted(defined))
                hint = f"; did you mean {guess}?" if guess else ""
                diag.error(
                    ("routes", index, "plugins", i),
                    f"plugin {name!r} is not defined under plugins{hint}",
                )


def _needs_identity(policy: RateLimitPolicy) -> bool:
    return any(part.kind in ("sub", "claim") for part in policy.key)


def _apply_default_limits(
    routes: tuple[RouteSpec, ...],
    inherits: set[str],
    defaults: tuple[RateLimitPolicy, ...],
    diag: Diagnostics,
) -> tuple[RouteSpec, ...]:
    """Routes without ``rate_limits`` of their own (``inherits``) get the gateway-wide ones."""
    if not defaults:
        return routes
    out: list[RouteSpec] = []
    for route in routes:
        if route.source not in inherits:
            out.append(route)
            continue
        for policy in defaults:
            if _needs_identity(policy) and route.auth is None:
                diag.error(
                    ("rate_limits",),
                    f"{policy.source} is keyed by the caller's identity, but {route.source} "
                    f"({route.label}) has no auth: give that route rate_limits of its own "
                    "([] for none)",
                )
        out.append(replace(route, rate_limits=defaults))
    return tuple(out)


def _read_top(data: Mapping[Any, Any], diag: Diagnostics) -> _Top:
    fields = {k: v for k, v in data.items() if k in _Top.model_fields}
    try:
        top = _Top.model_validate(fields)
    except ValidationError as exc:
        diag.validation(exc, model=_Top)
        return _Top()
    if top.propylon != VERSION:
        diag.error(
            ("propylon",),
            f"unsupported format version {top.propylon}; this propylon reads version {VERSION}",
        )
    if top.base_url is not None:
        try:
            values.http_url(top.base_url, what="base_url")
        except ValueError as exc:
            diag.error(("base_url",), str(exc))
    for key, check in (
        ("identity_header", values.identity_header),
        ("request_id_header", values.header_name),
    ):
        try:
            check(getattr(top, key))
        except ValueError as exc:
            diag.error((key,), str(exc))
    if top.identity_header.lower() == top.request_id_header.lower():
        diag.error(("identity_header",), "must differ from request_id_header")
    elif top.request_id_header.lower() in values.FORBIDDEN_IDENTITY_HEADERS:
        diag.error(
            ("request_id_header",),
            f"{top.request_id_header!r} is a hop-by-hop, framing or gateway-owned header",
        )
    proxies: list[str] = []
    for i, text in enumerate(top.trusted_proxies):
        try:
            proxies.append(values.cidr(text))
        except ValueError as exc:
            diag.error(("trusted_proxies", i), str(exc))
    return top.model_copy(update={"trusted_proxies": proxies})


class _Defaults:
    """What the top level gives every route that does not say otherwise."""

    __slots__ = ("cors", "dns", "ip_rules", "retries")

    def __init__(
        self,
        ip_rules: IpRules | None,
        cors: CorsPolicy | None,
        dns: DnsSpec,
        retries: RetrySpec,
    ) -> None:
        self.ip_rules = ip_rules
        self.cors = cors
        self.dns = dns
        self.retries = retries


def _read_routes(
    raw: object,
    diag: Diagnostics,
    refs: list[ProviderRef],
    identity_header: str,
    defaults: _Defaults,
    inherits: set[str],
    signs: bool,
) -> tuple[RouteSpec, ...]:
    if raw is None:
        diag.warning(("routes",), "no routes: every request will be answered 404")
        return ()
    if not isinstance(raw, list):
        diag.error(("routes",), f"must be a list of routes, got {kind_of(raw)}")
        return ()
    if not raw:
        diag.warning(("routes",), "no routes: every request will be answered 404")
    routes: list[RouteSpec] = []
    names: dict[str, str] = {}
    for index, item in enumerate(raw):
        loc: Loc = ("routes", index)
        try:
            route = _Route.model_validate(item)
        except ValidationError as exc:
            diag.validation(exc, loc, _Route)
            continue
        if route.name is not None:
            if route.name in names:
                diag.error(
                    (*loc, "name"), f"name {route.name!r} is already used by {names[route.name]}"
                )
            names.setdefault(route.name, diag.path(loc))
        spec = _compile(route, loc, diag, refs, identity_header, defaults, signs)
        if spec is not None:
            routes.append(spec)
            if route.rate_limits is None:
                inherits.add(spec.source)
    return tuple(routes)


def _compile(
    route: _Route,
    loc: Loc,
    diag: Diagnostics,
    refs: list[ProviderRef],
    identity_header: str,
    defaults: _Defaults,
    signs: bool,
) -> RouteSpec | None:
    errors = len(diag.problems)
    upstream, captured, is_regex = _upstream(route, loc, diag)
    methods: set[str] = set()
    if route.methods != ["*"]:
        for i, name in enumerate(route.methods):
            try:
                methods.add(values.http_method(name))
            except ValueError as exc:
                diag.error((*loc, "methods", i), str(exc))
    down = route.downstream
    scheme = "http"
    try:
        scheme = values.scheme(down.scheme)
    except ValueError as exc:
        diag.error((*loc, "downstream", "scheme"), str(exc))
    hosts = []
    if not down.hosts:
        diag.error((*loc, "downstream", "hosts"), "at least one host:port is required")
    for i, text in enumerate(down.hosts):
        try:
            hosts.append(values.host_and_port(text, values.SCHEMES.get(scheme, 80)))
        except ValueError as exc:
            diag.error((*loc, "downstream", "hosts", i), str(exc))
    if down.path is not None and upstream is not None:
        try:
            templates.check_downstream(down.path, captured, f"{_kind(is_regex)} {upstream!r}")
        except ValueError as exc:
            diag.error((*loc, "downstream", "path"), str(exc))
    _check_prefix(down, loc, diag)
    upstream_host = None
    if route.upstream_host is not None:
        try:
            upstream_host = values.upstream_host(route.upstream_host)
        except ValueError as exc:
            diag.error((*loc, "upstream_host"), str(exc))
    try:
        values.timeout(route.timeout)
    except ValueError as exc:
        diag.error((*loc, "timeout"), str(exc))
    auth = auth_requirement(route.auth, (*loc, "auth"), diag, refs) if route.auth else None
    found: list[tuple[Loc, ClaimHeader]] = []
    for header, claim in route.claim_headers.items():
        at = (*loc, "claim_headers", header)
        try:
            found.append((at, claim_headers.from_native(header, claim)))
        except ValueError as exc:
            diag.error(at, str(exc))
    if found and auth is None:
        diag.error((*loc, "claim_headers"), "headers from claims need `auth` on the route")
    identity_claim, from_claims = claim_headers.assign(found, identity_header, diag)
    ip_rules = effective(read_ip_rules(route.ip_rules, (*loc, "ip_rules"), diag), defaults.ip_rules)
    own_cors = read_cors(route.cors, (*loc, "cors"), diag, route=True)
    cors = defaults.cors if own_cors is None else (None if own_cors is OFF else own_cors)
    methods_served, cors_policy = attach(
        frozenset(methods), cors if isinstance(cors, CorsPolicy) else None
    )
    if route.anonymous_options and auth is None:
        diag.warning(
            (*loc, "anonymous_options"), "has no effect on a route without auth (it is public)"
        )
    at = (*loc, "rate_limits")
    limits = read_rate_limits(route.rate_limits, at, diag, per_route=True) or ()
    for index, policy in enumerate(limits):
        if _needs_identity(policy) and auth is None:
            diag.error(
                (*at, index, "key"),
                "sub and claim:<name> need the caller's identity: give the route `auth`",
            )
    audience = _audience(route, tuple(hosts), auth is not None, signs, loc, diag)
    at = (*loc, "downstream")
    balancer = native_resilience.balancer(down.balancer, (*at, "balancer"), len(hosts), diag)
    ejection = native_resilience.ejection(down.ejection, (*at, "ejection"), diag)
    health_check = native_resilience.health_check(down.health_check, (*at, "health_check"), diag)
    discovery = dns.route_discovery(down.discovery, (*at, "discovery"), diag, defaults.dns)
    breaker = native_resilience.circuit_breaker(
        route.circuit_breaker, (*loc, "circuit_breaker"), diag
    )
    retries = native_resilience.retries(route.retries, (*loc, "retries"), diag, defaults.retries)
    per_try = retries.per_try_timeout
    if route.retries is not None and per_try is not None and per_try >= route.timeout:
        diag.warning(
            (*loc, "retries", "per_try_timeout"),
            f"has no effect: the route's timeout ({route.timeout:g}s) ends every try first",
        )
    if any(p.severity == "error" for p in diag.problems[errors:]) or upstream is None:
        return None
    priority = route.priority
    if priority is None:
        priority = 0 if not is_regex and templates.is_catch_all(upstream) else 1
    return RouteSpec(
        source=diag.path(loc),
        upstream_path=upstream,
        downstream_hosts=tuple(hosts),
        methods=methods_served,
        path_is_regex=is_regex,
        upstream_host=upstream_host,
        case_sensitive=route.case_sensitive,
        priority=priority,
        downstream_scheme=scheme,
        downstream_path=down.path,
        auth=auth,
        timeout=float(route.timeout),
        name=route.name,
        downstream_path_prefix=down.path_prefix,
        claim_headers=from_claims,
        identity_claim=identity_claim,
        allow_underscores=route.allow_underscores,
        plugins=tuple(route.plugins),
        ip_rules=ip_rules,
        cors=cors_policy,
        anonymous_options=route.anonymous_options and auth is not None,
        rate_limits=limits,
        assertion_audience=audience,
        balancer=balancer,
        ejection=ejection,
        health_check=health_check,
        breaker=breaker,
        discovery=discovery,
        retries=retries,
    )


def _audience(
    route: _Route,
    hosts: tuple[DownstreamHost, ...],
    authenticated: bool,
    signs: bool,
    loc: Loc,
    diag: Diagnostics,
) -> str | None:
    """The route's assertion audience: on every authenticated route once the top-level
    ``assertion`` block exists, unless the route says ``assertion: false``."""
    given = route.assertion
    at = (*loc, "assertion")
    if given is not None and given is not False and not signs:
        diag.error(at, "assertions are off: add a top-level assertion block with its key_file")
        return None
    if given is not None and given is not False and not authenticated:
        diag.error(at, "needs `auth` on the route: a public route has no caller to assert")
        return None
    if not signs or not authenticated or given is False:
        return None
    if isinstance(given, RouteAssertion) and given.audience is not None:
        try:
            return assertion.check_audience(given.audience)
        except ValueError as exc:
            diag.error((*at, "audience"), str(exc))
            return None
    if not hosts:
        return None  # already reported: the route has no usable downstream host
    try:
        return assertion.audience_of(hosts, {})
    except ValueError as exc:
        diag.error(at, f"{exc}: set assertion.audience on the route")
        return None


def _kind(is_regex: bool) -> str:
    return "path_regex" if is_regex else "path"


def _upstream(route: _Route, loc: Loc, diag: Diagnostics) -> tuple[str | None, list[str], bool]:
    if (route.path is None) == (route.path_regex is None):
        diag.error(loc, "give exactly one of path (a template such as /users/{id}) or path_regex")
        return None, [], False
    if route.path is not None:
        try:
            return route.path, templates.check_upstream(route.path), False
        except ValueError as exc:
            diag.error((*loc, "path"), str(exc))
            return None, [], False
    assert route.path_regex is not None
    try:
        return route.path_regex, templates.regex_groups(route.path_regex), True
    except ValueError as exc:
        diag.error((*loc, "path_regex"), str(exc))
        return None, [], True


def _check_prefix(down: _Downstream, loc: Loc, diag: Diagnostics) -> None:
    prefix = down.path_prefix
    if not prefix:
        return
    at = (*loc, "downstream", "path_prefix")
    if down.path is not None:
        diag.error(at, "path_prefix only applies when downstream.path is not given")
    elif (
        not prefix.startswith("/")
        or prefix.endswith("/")
        or any(c in prefix for c in "?#")
        or any(segment in {".", ".."} for segment in prefix.split("/"))
    ):
        diag.error(
            at,
            f"must look like /api (leading '/', no trailing '/', no '.' or '..' "
            f"segments, no query), got {prefix!r}",
        )
