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


DEFAULT_ASSERTION_ISSUER = "propylon"
DEFAULT_ASSERTION_LIFETIME = 60


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

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.severity}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` lists every reason found."""

    def __init__(self, problems: tuple[Problem, ...] | list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _empty_providers() -> Mapping[str, JwtProviderSpec]:
    return MappingProxyType({})


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
    assertion: AssertionSettings | None = None
    """Signed gateway assertions; ``None``: off (routes' ``assertion_audience`` all None)."""
    warnings: tuple[Problem, ...] = ()
