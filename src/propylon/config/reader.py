"""What a format reader hands to the loader: routes and settings plus every problem found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from propylon.config.model import (
    AccessLogSpec,
    AdminSpec,
    AssertionSettings,
    DnsSpec,
    ForwardingPolicy,
    JwtProviderSpec,
    Limits,
    PluginSpec,
    Problem,
    RouteSpec,
    StateSpec,
    StatsAccess,
    TlsSpec,
    TracingSpec,
)


@dataclass(frozen=True, slots=True)
class ProviderRef:
    """A place in the file that needs the auth provider ``name``."""

    path: str
    name: str


def _no_providers() -> Mapping[str, JwtProviderSpec]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ReadResult:
    routes: tuple[RouteSpec, ...]
    problems: tuple[Problem, ...]
    provider_refs: tuple[ProviderRef, ...] = ()
    providers: Mapping[str, JwtProviderSpec] = field(default_factory=_no_providers)
    """Providers the file itself defines (native format only)."""
    attempted_providers: frozenset[str] = frozenset()
    """Names the file defines, including ones whose definition has errors (those errors are
    reported already; references to them are not reported again)."""
    base_url: str | None = None
    request_id_header: str | None = None
    identity_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    limits: Limits | None = None
    stats: StatsAccess | None = None
    forwarding: ForwardingPolicy | None = None
    plugins: tuple[PluginSpec, ...] = ()
    tls: TlsSpec | None = None
    state: StateSpec | None = None
    assertion: AssertionSettings | None = None
    """The native ``assertion`` block (routes' audiences are already set)."""
    admin: AdminSpec | None = None
    """The native ``admin`` block (its token is read later, when ``run`` starts)."""
    tracing: TracingSpec | None = None
    """The native ``tracing`` block."""
    dns: DnsSpec | None = None
    access_log: AccessLogSpec | None = None
