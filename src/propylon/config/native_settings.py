"""The gateway-wide sections of the native format: auth providers, limits, stats access,
forwarding and the signed assertion."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from propylon.config import assertion, values
from propylon.config.diagnostics import Diagnostics, Loc, kind_of
from propylon.config.model import (
    DEFAULT_ASSERTION_ISSUER,
    DEFAULT_ASSERTION_LIFETIME,
    AssertionSettings,
    AuthRequirement,
    ForwardingPolicy,
    JwtProviderSpec,
    Limits,
    StatsAccess,
)
from propylon.config.providers import ProviderInput, build_provider
from propylon.config.reader import ProviderRef

_LIMITS = Limits()
_STATS = StatsAccess()
_FORWARDING = ForwardingPolicy()
# The gateway reads or writes these itself: stripping them would break the exchange.
_NOT_STRIPPABLE = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "expect", "authorization"}
)


def as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StrList = Annotated[list[str], BeforeValidator(as_list)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AuthSection(Strict):
    providers: StrList
    scopes: StrList = []
    claims: dict[str, str] = {}


class _Provider(Strict):
    secret: str | None = None
    secret_env: str | None = None
    public_key_file: str | None = None
    jwks_url: str | None = None
    algorithms: StrList | None = None
    issuer: str | None = None
    audience: StrList = []
    leeway: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    jwks_refresh_interval: Seconds = 300.0
    jwks_min_refresh_interval: Seconds = 30.0
    jwks_timeout: Seconds = 5.0


class _Limits(Strict):
    max_body_bytes: Annotated[int, Field(ge=1)] = _LIMITS.max_body_bytes
    max_header_bytes: Annotated[int, Field(ge=1024)] = _LIMITS.max_header_bytes
    max_headers: Annotated[int, Field(ge=1)] = _LIMITS.max_headers
    max_url_bytes: Annotated[int, Field(ge=16)] = _LIMITS.max_url_bytes
    header_timeout: Seconds = _LIMITS.header_timeout
    body_timeout: Seconds = _LIMITS.body_timeout
    min_body_rate: Annotated[int, Field(ge=0)] = _LIMITS.min_body_rate
    body_rate_grace: Seconds = _LIMITS.body_rate_grace
    keepalive_timeout: Seconds = _LIMITS.keepalive_timeout
    connect_timeout: Seconds = _LIMITS.connect_timeout
    drain_timeout: Annotated[float, Field(ge=0, allow_inf_nan=False)] = _LIMITS.drain_timeout
    upstream_pool_size: Annotated[int, Field(ge=0)] = _LIMITS.upstream_pool_size
    upstream_idle_timeout: Seconds = _LIMITS.upstream_idle_timeout
    upstream_max_connections: Annotated[int, Field(ge=0)] = _LIMITS.upstream_max_connections
    upstream_queue: Annotated[int, Field(ge=0)] = _LIMITS.upstream_queue
    upstream_queue_timeout: Seconds = _LIMITS.upstream_queue_timeout
    token_cache_size: Annotated[int, Field(ge=0)] = _LIMITS.token_cache_size


class _Stats(Strict):
    enabled: bool = _STATS.enabled
    path: str = _STATS.path
    allow_cidrs: StrList = list(_STATS.allow_cidrs)
    auth: AuthSection | None = None


class _Forwarding(Strict):
    strip_client_headers: StrList = list(_FORWARDING.strip_client_headers)
    allow_underscores: bool = _FORWARDING.allow_underscores
    allow_double_encoding: bool = _FORWARDING.allow_double_encoding


class _Assertion(Strict):
    key_file: str
    issuer: str = DEFAULT_ASSERTION_ISSUER
    lifetime: int = DEFAULT_ASSERTION_LIFETIME
    public_keys_file: str | None = None


class RouteAssertion(Strict):
    """A route's ``assertion`` when it is a mapping (``false`` opts the route out)."""

    audience: str | None = None


def read_assertion(raw: object, diag: Diagnostics, base_dir: Path) -> AssertionSettings | None:
    """The top-level ``assertion`` block; relative paths are relative to the config file."""
    if raw is None:
        return None
    try:
        given = _Assertion.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, ("assertion",), _Assertion)
        return None
    public = given.public_keys_file
    return assertion.build_settings(
        (base_dir / given.key_file).resolve(),
        given.issuer,
        given.lifetime,
        (base_dir / public).resolve() if public is not None else None,
        lambda field, message: diag.error(("assertion", field), message),
        lambda field, message: diag.warning(("assertion", field), message),
    )


def read_forwarding(raw: object, diag: Diagnostics) -> ForwardingPolicy:
    if raw is None:
        return ForwardingPolicy()
    try:
        given = _Forwarding.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, ("forwarding",), _Forwarding)
        return ForwardingPolicy()
    names: list[str] = []
    for i, name in enumerate(given.strip_client_headers):
        at = ("forwarding", "strip_client_headers", i)
        try:
            values.header_name(name)
        except ValueError as exc:
            diag.error(at, str(exc))
            continue
        if name.lower() in _NOT_STRIPPABLE:
            diag.error(at, f"{name!r} cannot be stripped: the gateway reads or writes it itself")
            continue
        names.append(name)
    return ForwardingPolicy(
        strip_client_headers=tuple(names),
        allow_underscores=given.allow_underscores,
        allow_double_encoding=given.allow_double_encoding,
    )


def auth_requirement(
    section: AuthSection, loc: Loc, diag: Diagnostics, refs: list[ProviderRef]
) -> AuthRequirement | None:
    providers: list[str] = []
    for i, name in enumerate(section.providers):
        if name.strip() and name.strip() not in providers:
            providers.append(name.strip())
            refs.append(ProviderRef(diag.path((*loc, "providers", i)), name.strip()))
    if not providers:
        diag.error((*loc, "providers"), "at least one provider name is required")
        return None
    return AuthRequirement(
        providers=tuple(providers),
        allowed_scopes=tuple(s for s in section.scopes if s.strip()),
        required_claims=tuple(section.claims.items()),
    )


def read_limits(raw: object, diag: Diagnostics) -> Limits:
    if raw is None:
        return Limits()
    try:
        return Limits(**_Limits.model_validate(raw).model_dump())
    except ValidationError as exc:
        diag.validation(exc, ("limits",), _Limits)
        return Limits()


def read_stats(raw: object, diag: Diagnostics, refs: list[ProviderRef]) -> StatsAccess:
    if raw is None:
        return StatsAccess()
    try:
        stats = _Stats.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, ("stats",), _Stats)
        return StatsAccess()
    path = stats.path
    if (
        not path.startswith("/")
        or any(c in path for c in "?#%\\ ")
        or "//" in path
        or any(segment in {".", ".."} for segment in path.split("/"))
    ):
        diag.error(("stats", "path"), f"must be a plain absolute path such as /stats, got {path!r}")
    cidrs: list[str] = []
    for i, text in enumerate(stats.allow_cidrs):
        try:
            cidrs.append(values.cidr(text))
        except ValueError as exc:
            diag.error(("stats", "allow_cidrs", i), str(exc))
    auth = auth_requirement(stats.auth, ("stats", "auth"), diag, refs) if stats.auth else None
    return StatsAccess(enabled=stats.enabled, path=path, allow_cidrs=tuple(cidrs), auth=auth)


def read_providers(
    raw: object, diag: Diagnostics, env: Mapping[str, str], base_dir: Path
) -> dict[str, JwtProviderSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        diag.error(
            ("auth_providers",),
            f"must be a mapping of provider name to settings, got {kind_of(raw)}",
        )
        return {}
    providers: dict[str, JwtProviderSpec] = {}
    for name, body in raw.items():
        loc: Loc = ("auth_providers", str(name))
        try:
            given = _Provider.model_validate(body)
        except ValidationError as exc:
            diag.validation(exc, loc, _Provider)
            continue
        provider = _build(str(name), given, loc, diag, env, base_dir)
        if provider is not None:
            providers[str(name)] = provider
    return providers


def _build(
    name: str,
    given: _Provider,
    loc: Loc,
    diag: Diagnostics,
    env: Mapping[str, str],
    base_dir: Path,
) -> JwtProviderSpec | None:
    secret_key = "secret_env" if given.secret_env is not None else "secret"
    secret: bytes | None = None
    if given.secret is not None and given.secret_env is not None:
        diag.error((*loc, "secret_env"), "give secret or secret_env, not both")
        return None
    if given.secret_env is not None:
        value = env.get(given.secret_env, "")
        if not value:
            diag.error(
                (*loc, "secret_env"), f"environment variable {given.secret_env} is not set or empty"
            )
            return None
        secret = value.encode("utf-8")
    elif given.secret is not None:
        secret = given.secret.encode("utf-8")
    key_file = None
    if given.public_key_file is not None:
        key_file = str(base_dir / given.public_key_file)

    def field_loc(field: str) -> Loc:
        return (*loc, secret_key if field == "secret" else field)

    return build_provider(
        ProviderInput(
            name=name,
            secret=secret,
            public_key_file=key_file,
            jwks_url=given.jwks_url,
            algorithms=tuple(given.algorithms) if given.algorithms is not None else None,
            issuer=given.issuer,
            audience=tuple(given.audience),
            leeway=given.leeway,
            jwks_refresh_interval=given.jwks_refresh_interval,
            jwks_min_refresh_interval=given.jwks_min_refresh_interval,
            jwks_timeout=given.jwks_timeout,
        ),
        lambda field, message: diag.error(field_loc(field), message),
        lambda field, message: diag.warning(field_loc(field), message),
        key_fields="secret / secret_env, public_key_file, jwks_url",
    )
