"""The gateway's configuration as plain frozen objects.

Every reader (native YAML/JSON, Ocelot's ``ocelot.json``/``Routes.json``, the first seed's
route list) produces exactly these objects; nothing downstream knows which format a route came
from. Validation happens in the readers (pydantic); by the time a ``GatewayConfig`` exists it
is known to be consistent, so the hot path never re-checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

MIB = 1024 * 1024
IDENTITY_HEADER = "User"
"""The identity header's name unless a native config says otherwise (the first seed's)."""


class ConfigFormat(StrEnum):
    NATIVE = "native"
    OCELOT = "ocelot"
    SEED = "seed"


@dataclass(frozen=True, slots=True)
class DownstreamHost:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class AuthRequirement:
    """What a route asks of the caller.

    ``providers``: names of the auth providers that may verify the token (any one suffices).
    ``allowed_scopes``: any-of; empty means no scope is required (Ocelot ``AllowedScopes``).
    ``required_claims``: every (claim, value) pair must hold (Ocelot ``RouteClaimsRequirement``);
    a claim whose value is an array holds when it contains the value.
    """

    providers: tuple[str, ...]
    allowed_scopes: tuple[str, ...] = ()
    required_claims: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimHeader:
    """``header`` gets the value of claim ``claim`` (Ocelot: ``Claims[claim] > value``).

    With ``index`` set the claim value is split on ``delimiter`` and that element is used
    (Ocelot: ``Claims[claim] > value[index] > delimiter``). A list claim is joined with ", ".
    A missing claim sends no header at all.
    """

    header: str
    claim: str
    index: int | None = None
    delimiter: str | None = None


@dataclass(frozen=True, slots=True)
class IpRules:
    """Who may use a route by client address (Ocelot ``SecurityOptions``).

    Entries are addresses, CIDR networks, IPv4 ``address/mask`` networks or ranges
    (``propylon.http.cidr``). A blocked address is refused (unless
    ``exclude_allowed_from_blocked`` and it is also allowed); with a non-empty ``allowed``,
    every address outside it is refused too.
    """

    allowed: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    exclude_allowed_from_blocked: bool = False

    def __bool__(self) -> bool:
        return bool(self.allowed or self.blocked)


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which browser origins may call a route, and what they may send and read.

    ``origins``: exact origins (``https://app.example.com``), patterns whose left-most host
    labels are ``*`` (``https://*.example.com``), or ``*`` alone (any origin, never with
    ``credentials``). ``methods`` and ``headers`` may be ``("*",)``: whatever a preflight
    asks for. ``max_age``: seconds a browser may cache a preflight answer (None: not sent).
    """

    origins: tuple[str, ...]
    methods: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    headers: tuple[str, ...] = ("Authorization", "Content-Type")
    expose_headers: tuple[str, ...] = ()
    credentials: bool = False
    max_age: int | None = None
    route_methods: frozenset[str] | None = None
    """The methods the route itself lists, when it lists some and not ``OPTIONS``: the
    route then matches ``OPTIONS`` only so that preflights reach this policy, and any other
    ``OPTIONS`` request is answered 405. None: the route serves ``OPTIONS`` itself."""


@dataclass(frozen=True, slots=True)
class OcelotRateLimit:
    """An Ocelot route's effective ``RateLimitOptions`` (route and global merged as Ocelot 25
    merges them): a fixed window of ``period_seconds`` admitting ``limit`` requests per
    client id (the ``client_id_header`` value) on this route, then refusing for the rest of
    the window, or for ``wait_seconds`` after the request that exceeded it when a wait is set.
    ``period`` and ``wait`` are kept as Ocelot renders them, for its messages
    (``3/1s/w1s``)."""

    limit: int
    period: str
    period_seconds: float
    wait: str = "0ms"
    wait_seconds: float = 0.0
    client_id_header: str = "Oc-Client"
    client_whitelist: frozenset[str] = frozenset()
    enable_headers: bool = True
    status: int = 429
    quota_message: str = "API calls quota exceeded! Maximum admitted {0} per {1}."
    """A .NET composite format string: ``{0}`` is the limit, ``{1}`` the period."""
    key_prefix: str = "Ocelot.RateLimiting"

    @property
    def rule(self) -> str:
        """Ocelot's name for the rule in its messages: ``<Limit>/<Period>/w<Wait>``."""
        return f"{self.limit}/{self.period}/w{self.wait}"


@dataclass(frozen=True, slots=True)
class KeyPart:
    """One part of a native rate limit's key: ``sub`` (the verified token's subject),
    ``claim`` (``name``: any claim of the verified token), ``ip`` (the client address, read
    through trusted proxies only), ``header`` (``name``, lower case) or ``route``."""

    kind: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """A native rate limit: ``limit`` requests per ``period`` seconds for each value of
    ``key``, enforced with GCRA (a request is admitted when the key's bucket has room; the
    bucket drains at ``limit / period`` per second, so a burst of ``limit`` is allowed and
    then one request every ``period / limit`` seconds)."""

    name: str
    """The policy's name in ``RateLimit-Policy`` / ``RateLimit`` response headers."""
    limit: int
    period: float
    key: tuple[KeyPart, ...]
    source: str
    """Where it was written (``routes[2].rate_limits[0]``, ``rate_limits[0]``)."""
    per_route: bool = True
    """Counted per route: true for limits written on a route, and for gateway-wide defaults
    whose key has ``route``; a default without it counts across all the routes it covers."""


STATE_BACKENDS = ("auto", "memory", "workers", "redis")
FAILURE_POLICIES = ("open", "closed")


@dataclass(frozen=True, slots=True)
class StateSpec:
    """Where shared state (rate-limit counters) lives. ``auto``: Redis when ``redis_url``
    is set (native ``state.redis_url`` or ``PROPYLON_REDIS_URL``), else the workers' shared
    table with ``--workers`` above 1, else this process."""

    backend: str = "auto"
    redis_url: str | None = None
    timeout: float = 0.25
    """Seconds one Redis decision may take, connecting included."""
    on_failure: str = "open"
    """When Redis does not answer: ``open`` admits the request, ``closed`` answers 503."""
    key_prefix: str = "propylon:"
    max_keys: int = 100_000
    """Records kept by the in-process and cross-worker stores (least recently used, or
    soonest to expire, make room)."""
    redis_max_connections: int = 64

    def chosen(self, workers: int) -> str:
        if self.backend != "auto":
            return self.backend
        if self.redis_url:
            return "redis"
        return "workers" if workers > 1 else "memory"


BALANCERS = (
    "first",
    "round_robin",
    "least_connection",
    "sticky_cookie",
    "weighted_round_robin",
    "power_of_two",
    "hash",
)
"""Native names of the balancers; Ocelot's ``NoLoadBalancer``, ``RoundRobin``,
``LeastConnection`` and ``CookieStickySessions`` are the first four."""
HASH_SOURCES = ("header", "cookie", "claim")


@dataclass(frozen=True, slots=True)
class BalancerSpec:
    """How a route picks one of its downstream hosts (``upstream/selector.py``)."""

    kind: str = "round_robin"
    key: str = ""
    """``sticky_cookie``: the cookie name (Ocelot ``Key``); ``hash``: the header, cookie or
    claim name whose value is hashed."""
    expiry: float = 1200.0
    """``sticky_cookie``: seconds a session lasts without a request (Ocelot ``Expiry``, ms)."""
    hash_on: str = "header"
    """``hash``: where ``key`` is read: ``header``, ``cookie`` or ``claim``."""
    weights: tuple[int, ...] = ()
    """``weighted_round_robin``: one positive weight per downstream host, in their order."""


@dataclass(frozen=True, slots=True)
class EjectionSpec:
    """Passive health: a host that fails ``consecutive_failures`` times in a row (connect
    failures, resets, timeouts, malformed answers, 5xx) is out for ``base`` seconds; each
    failure after it came back doubles the time, up to ``max``; a success resets it."""

    consecutive_failures: int = 5
    base: float = 5.0
    max: float = 300.0


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    """Active health: ``GET path`` every ``interval`` seconds; a host is down after
    ``unhealthy_threshold`` failed checks in a row and up again after ``healthy_threshold``
    passed ones (a 2xx or 3xx within ``timeout``)."""

    path: str = "/health"
    interval: float = 5.0
    timeout: float = 2.0
    healthy_threshold: int = 1
    unhealthy_threshold: int = 2


DEFAULT_DNS_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class DnsSpec:
    """How discovered host names are resolved (``upstream/discovery.py``).

    ``nameservers``: (address, port) pairs queried directly (dnspython, record TTLs known);
    empty: the system's resolver (``getaddrinfo``: ``/etc/hosts``, ``resolv.conf``), which
    gives no TTL. A name is re-resolved every ``interval`` seconds, or sooner when its
    records' TTL is shorter, but never more often than every ``min_interval``.
    ``discover_all``: every route's host names are discovered unless the route says not."""

    nameservers: tuple[tuple[str, int], ...] = ()
    interval: float = DEFAULT_DNS_INTERVAL
    min_interval: float = 1.0
    timeout: float = 2.0
    discover_all: bool = False


@dataclass(frozen=True, slots=True)
class BreakerSpec:
    """A route's circuit breaker (Ocelot ``QoSOptions``), as Ocelot 25's built-in one.

    Count mode (``failure_ratio`` None): open after ``minimum_throughput`` failures in a row.
    Ratio mode: open when, among at least ``minimum_throughput`` outcomes of the last
    ``sampling_duration`` seconds, the failed share reaches ``failure_ratio``. Open for
    ``break_duration`` seconds, then half-open: one probe request at a time; its success
    closes the circuit, its failure opens it again."""

    minimum_throughput: int = 100
    break_duration: float = 5.0
    failure_ratio: float | None = None
    sampling_duration: float = 10.0


RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""RFC 9110 s.9.2.2's idempotent methods (TRACE is refused on every route)."""


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """When a request is sent again after its try failed before any byte of an answer
    (``upstream/retry.py``).

    Always (``attempts`` > 1): a failure that provably left the upstream untouched (the
    connection was never made: refused, unreachable, DNS, TLS, connect timeout; the host's
    pool queue was full or timed out; the host was taken out while the request queued), for
    every method, with the body the gateway still holds; and a reused keep-alive connection
    closed or reset before any byte of the answer, for a body-less idempotent request (the
    keep-alive race, RFC 9112 s.9.3.1). ``methods``: also any other failure before the
    answer's first byte (a reset or close of a fresh connection, ``per_try_timeout``), for
    these methods only, replaying a body of at most ``replay_body_bytes``."""

    attempts: int = 2
    """Tries in all, the first included: 1 never retries."""
    methods: frozenset[str] = frozenset()
    """Upper-case methods retried after a failure the upstream may have seen."""
    per_try_timeout: float | None = None
    """Seconds a try may wait for its answer's head before it is abandoned (and retried
    when its method is in ``methods``); None: only the route's timeout."""
    backoff: float = 0.025
    """Base of the jittered exponential backoff: before retry n, a uniformly random wait
    in [0, backoff * 2**(n-1)], at most ``backoff_max``."""
    backoff_max: float = 0.25
    replay_body_bytes: int = 64 * 1024
    """The largest request body kept for a replay; a larger one is a streamed upload, never
    sent twice."""
    budget_ratio: float = 0.2
    """Retries of the route (per worker) are at most this share of its requests ..."""
    budget_floor: float = 3.0
    """... plus this many per second, so a quiet route can still retry."""


NO_RETRIES = RetrySpec(attempts=1)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route, independent of the format it was written in.

    ``source`` is the key path of the route in its file (``Routes[3]``, ``routes[0]``, ``[2]``)
    and is how diagnostics, ``/stats`` and ``propylon routes`` name it.
    """

    source: str
    upstream_path: str
    """An Ocelot-style template (``/api/{id}``, ``/{everything}``), or a regular expression
    when ``path_is_regex`` (the first seed's ``path_regex``, matched against the whole
    canonical path)."""
    downstream_hosts: tuple[DownstreamHost, ...]
    methods: frozenset[str] = frozenset()
    """Upper-case method names; empty means every method (Ocelot: empty ``UpstreamHttpMethod``)."""
    path_is_regex: bool = False
    upstream_host: str | None = None
    """Ocelot ``UpstreamHost``: only requests whose ``Host`` (without port when the template has
    none) equals this match. ``None`` matches any host."""
    case_sensitive: bool = False
    priority: int = 1
    """Higher wins among matching routes (Ocelot ``Priority``); a catch-all template such as
    ``/{everything}`` defaults to 0 when the file does not say."""
    downstream_scheme: str = "http"
    downstream_path: str | None = None
    """A template using the upstream template's placeholders, or ``None`` to forward the
    canonical request path unchanged (the first seed's ``service_url`` routes)."""
    auth: AuthRequirement | None = None
    timeout: float = 30.0
    """Seconds allowed for the upstream to answer (connect + response headers)."""
    name: str | None = None
    """An optional human name (native format ``name``; Ocelot ``Key``)."""
    downstream_path_prefix: str = ""
    """Prepended to the forwarded canonical path when ``downstream_path`` is ``None`` (the
    path part of a first-seed ``service_url`` such as ``http://svc:8000/api``). Empty, or a
    path starting with ``/`` and not ending with one."""
    claim_headers: tuple[ClaimHeader, ...] = ()
    """Headers set from the verified token's claims (Ocelot ``AddHeadersToRequest``). Their
    names are removed from every client request, on every route, like the identity header.
    Never the identity header itself (see ``identity_claim``), never two of one name."""
    identity_claim: ClaimHeader | None = None
    """Which claim this route sends as the identity header (``header`` is
    ``GatewayConfig.identity_header``), when the config maps one onto that header's name
    (Ocelot's ``"User": "Claims[email] > value"``); ``None``: the token's ``sub``, as on
    every other authenticated route. Either way the upstream gets exactly one identity line.
    A token without that claim names nobody, so the route refuses it rather than falling
    back to the ``sub`` or sending no identity."""
    allow_underscores: bool | None = None
    """Forward client headers whose names contain ``_`` on this route; ``None``: as
    ``ForwardingPolicy.allow_underscores`` says."""
    plugins: tuple[str, ...] = ()
    """Names of ``GatewayConfig.plugins`` this route runs, in order (after authentication)."""
    ip_rules: IpRules | None = None
    """Client-address rules of this route (its own, else the file's global ones); None:
    every address may use it."""
    cors: CorsPolicy | None = None
    """Cross-origin rules (its own, else the file's global ones); None: no CORS headers,
    preflights go upstream like any other request."""
    anonymous_options: bool = False
    """``OPTIONS`` requests skip authentication and authorization and go upstream without
    an identity (Ocelot does this for every route; a native route only when it says so)."""
    ocelot_rate_limit: OcelotRateLimit | None = None
    """Ocelot ``RateLimitOptions`` (checked before authentication, as in Ocelot)."""
    rate_limits: tuple[RateLimitPolicy, ...] = ()
    """Native limits (checked after authentication: they may be keyed by the identity)."""

    @property
    def counter_key(self) -> str:
        """How rate-limit counters name this route: stable when routes are reordered or the
        gateway restarts, the same on every replica with the same config (Ocelot keys its
        counters by the route's load-balancer key, which is built the same way)."""
        methods = ",".join(sorted(self.methods)) if self.methods else "*"
        return f"{methods}|{self.upstream_host or ''}|{self.upstream_path}"

    balancer: BalancerSpec = BalancerSpec()
    ejection: EjectionSpec | None = EjectionSpec()
    """Passive health of this route's hosts (None: never ejected)."""
    health_check: HealthCheckSpec | None = None
    """Active health checks of this route's hosts (None: none)."""
    breaker: BreakerSpec | None = None
    """The route's circuit breaker (None: none)."""
    discovery: float | None = None
    """Seconds between re-resolutions of this route's host names (DNS discovery,
    ``upstream/discovery.py``): each name is then as many targets as it has addresses.
    None: names are not discovered (the system resolves them when a connection opens)."""
    retries: RetrySpec = RetrySpec()
    """When a failed try is sent again (``NO_RETRIES``: never)."""
    assertion_audience: str | None = None
    """The ``aud`` of the signed gateway assertion this route sends upstream (the service's
    name); ``None``: the route sends none (assertions off, a public route, or opted out).
    Only ever set on a route with ``auth``, and only when ``GatewayConfig.assertion`` is."""

    @property
    def label(self) -> str:
        """How the route is shown in ``/stats`` and tables: never a raw request path."""
        methods = ",".join(sorted(self.methods)) if self.methods else "*"
        return self.name or f"{methods} {self.upstream_path}"


@dataclass(frozen=True, slots=True)
class JwtProviderSpec:
    """A named way to verify bearer tokens. Exactly one key source is set: ``secret``, a
    public key (``public_key_pem``, with ``public_key_file`` naming the file it was read from
    when there is one), or ``jwks_url``."""

    name: str
    algorithms: tuple[str, ...]
    secret: bytes | None = None
    public_key_pem: bytes | None = None
    public_key_file: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: tuple[str, ...] = ()
    leeway: float = 0.0
    jwks_refresh_interval: float = 300.0
    """Background refresh period of a JWKS."""
    jwks_min_refresh_interval: float = 30.0
    """Least time between two fetches triggered by an unknown ``kid``."""
    jwks_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 10 * MIB
    max_header_bytes: int = 64 * 1024
    """Request line plus all header lines: beyond it 431."""
    max_headers: int = 100
    max_url_bytes: int = 8 * 1024
    header_timeout: float = 10.0
    """Seconds a client has to send a complete request head (slow-header defence)."""
    keepalive_timeout: float = 75.0
    connect_timeout: float = 5.0
    drain_timeout: float = 20.0
    """On SIGTERM/SIGINT: seconds in-flight requests get before connections are cut."""
    upstream_pool_size: int = 256
    """Idle keep-alive connections kept per downstream host."""
    token_cache_size: int = 4096
    body_timeout: float = 300.0
    """Seconds a client has, from its head, to send the whole request body (408 after)."""
    min_body_rate: int = 1024
    """Bytes per second a request body must average once ``body_rate_grace`` seconds have
    passed since its head (408 below it; 0 turns the check off). Slow-body defence."""
    body_rate_grace: float = 10.0
    upstream_idle_timeout: float = 30.0
    """Seconds an idle keep-alive connection to a downstream host is kept before it is
    closed (shorter than the upstream's own keep-alive timeout narrows the reuse race)."""
    upstream_max_connections: int = 1024
    """Connections (in use, idle or opening) one worker keeps to one downstream host;
    0: no cap. Beyond it requests wait in the host's queue."""
    upstream_queue: int = 1024
    """Requests that may wait for a connection to one host (per worker); when it is full,
    the next is refused at once (503 UpstreamBusy, or another host when it may retry)."""
    upstream_queue_timeout: float = 5.0
    """Seconds a request waits in a host's queue before the same refusal."""


@dataclass(frozen=True, slots=True)
class StatsAccess:
    """Who may read ``GET /stats``: a client address in ``allow_cidrs``, or (when ``auth`` is
    set) a bearer token satisfying it."""

    enabled: bool = True
    path: str = "/stats"
    allow_cidrs: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    auth: AuthRequirement | None = None


DEFAULT_STRIPPED_CLIENT_HEADERS = (
    "X-Real-IP",
    "X-Client-IP",
    "True-Client-IP",
    "X-Forwarded-Prefix",
    "X-Forwarded-Ssl",
    "X-Original-URL",
    "X-Rewrite-URL",
)
"""Headers that upstream frameworks trust as facts about the caller or the URL (Spring,
Symfony, Laravel, IIS rewrite, Rails), and that a client could otherwise set itself."""


@dataclass(frozen=True, slots=True)
class ForwardingPolicy:
    """Which client headers never reach an upstream, beyond the hop-by-hop ones.

    ``strip_client_headers``: removed from every client request on every route (the gateway
    sets ``X-Real-IP`` itself). ``allow_underscores``: nginx's ``underscores_in_headers``; off,
    a client header whose name contains ``_`` is dropped (CGI/WSGI stacks read ``X_User`` as
    ``X-User``). A route may allow them for itself (``RouteSpec.allow_underscores``). Either
    way, a name that reads as a gateway-owned header once ``_`` becomes ``-`` is dropped.
    """

    strip_client_headers: tuple[str, ...] = DEFAULT_STRIPPED_CLIENT_HEADERS
    allow_underscores: bool = False
    allow_double_encoding: bool = False
    """Forward ``%252e``, ``%252f``, ``%255c`` in paths instead of answering 400 (Envoy's
    default is the same refusal)."""


DEFAULT_TLS_PORT = 8443


@dataclass(frozen=True, slots=True)
class TlsSpec:
    """The TLS listener: where it listens and the PEM files it serves (absolute or relative
    to the working directory; the readers resolve a file's paths against its directory).
    ``only``: no plain HTTP listener at all."""

    cert_file: str
    key_file: str
    port: int = DEFAULT_TLS_PORT
    only: bool = False


DEFAULT_ASSERTION_ISSUER = "propylon"
DEFAULT_ASSERTION_LIFETIME = 60


DEFAULT_ADMIN_TOKEN_ENV = "PROPYLON_ADMIN_TOKEN"

ACCESS_LOG_FORMATS = ("json", "combined")


@dataclass(frozen=True, slots=True)
class AccessLogSpec:
    """The access log (``--access-log PATH|-`` or the native ``access_log`` block): one line
    per request served, written by each worker (``propylon.logs.access``). ``path`` ``-``
    is standard output. ``redact_query``: query values are written as ``***``."""

    path: str
    format: str = "json"
    redact_query: bool = True


@dataclass(frozen=True, slots=True)
class AdminSpec:
    """The operations listener (``--admin HOST:PORT`` or the native ``admin`` block).

    ``token`` is read from the environment variable ``token_env`` when ``propylon run``
    starts (config/admin.py); it is never in a file, and ``/config`` never shows it.
    """

    host: str
    port: int
    token_env: str = DEFAULT_ADMIN_TOKEN_ENV
    token: bytes | None = None


@dataclass(frozen=True, slots=True)
class TracingSpec:
    """Distributed tracing (the native ``tracing`` block, ``--otlp-endpoint``,
    ``--otlp-sample-ratio``). W3C trace context is propagated on every proxied request
    whatever this says; spans are exported only with an endpoint."""

    otlp_endpoint: str | None = None
    """Where spans are POSTed (OTLP/HTTP, protobuf): the full URL of the traces endpoint
    (``http://collector:4318/v1/traces``); None: no spans, propagation only."""
    sample_ratio: float = 1.0
    """Share of new traces (those no client began) the gateway samples, 0.0-1.0; a
    client's sampled flag is respected either way."""
    service_name: str = "propylon"
    """The spans' ``service.name`` resource attribute."""


@dataclass(frozen=True, slots=True)
class AssertionSettings:
    """The signed hop (services/README.md, "The signed hop"): the gateway signs what it
    asserts about the caller with its own Ed25519 key, for the services to verify.

    ``key_pem`` is the private key read from ``key_file`` when the config was loaded (so
    ``check`` has seen it). ``public_keys_file``: where ``propylon run`` writes the public
    JWK set for the services (``SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE``) before it serves."""

    key_file: str
    key_pem: bytes
    issuer: str = DEFAULT_ASSERTION_ISSUER
    lifetime: int = DEFAULT_ASSERTION_LIFETIME
    """Seconds from ``iat`` to ``exp``."""
    public_keys_file: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """A config diagnostic: file, key path and what is wrong."""

    file: str
    path: str
    message: str
    severity: str = "error"  # "error" | "warning"
    security: bool = False
    """A warning whose key, ignored, leaves the gateway more open than the file reads
    (an authorization key propylon does not implement): shown ``warning (security)``, and
    logged at start-up with ``security: true``."""

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        severity = f"{self.severity} (security)" if self.security else self.severity
        return f"{where}: {severity}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` lists every reason found."""

    def __init__(self, problems: tuple[Problem, ...] | list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _empty_providers() -> Mapping[str, JwtProviderSpec]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """A user stage (``propylon.plugins.Plugin``), by import path, with its own settings."""

    name: str
    use: str
    """``package.module:Class``."""
    settings: Mapping[str, Any]
    source: str
    """Its key path in the file, for messages (``plugins.api_keys``)."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    source: str
    format: ConfigFormat
    routes: tuple[RouteSpec, ...]
    providers: Mapping[str, JwtProviderSpec] = field(default_factory=_empty_providers)
    base_url: str | None = None
    request_id_header: str = "X-Request-Id"
    identity_header: str = IDENTITY_HEADER
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs whose ``X-Forwarded-For`` we append to; from anyone else it is replaced."""
    limits: Limits = field(default_factory=Limits)
    stats: StatsAccess = field(default_factory=StatsAccess)
    forwarding: ForwardingPolicy = field(default_factory=ForwardingPolicy)
    plugins: tuple[PluginSpec, ...] = ()
    tls: TlsSpec | None = None
    state: StateSpec = field(default_factory=StateSpec)
    assertion: AssertionSettings | None = None
    """Signed gateway assertions; ``None``: off (routes' ``assertion_audience`` all None)."""
    admin: AdminSpec | None = None
    """The operations listener: off (None) unless the file or ``--admin`` asks for it."""
    tracing: TracingSpec = field(default_factory=TracingSpec)
    dns: DnsSpec = field(default_factory=DnsSpec)
    access_log: AccessLogSpec | None = None
    """Off (None) unless the file or ``--access-log`` asks for it."""
    warnings: tuple[Problem, ...] = ()
