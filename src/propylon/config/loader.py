"""``load_config``: any of the three formats in, one checked ``GatewayConfig`` out.

Every problem of the file is collected before giving up, so one ``propylon check`` run shows
them all. Errors raise ``ConfigError`` (which carries the warnings too); warnings alone end up
in ``GatewayConfig.warnings``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from types import MappingProxyType

from propylon.config import assertion
from propylon.config.detect import detect_format
from propylon.config.diagnostics import Diagnostics, render
from propylon.config.document import Document, duplicate_keys, read_document
from propylon.config.environment import BEARER, ENV_FILE, HOW_TO_DEFINE, bearer_from_environment
from propylon.config.model import (
    IDENTITY_HEADER,
    ConfigError,
    ConfigFormat,
    DnsSpec,
    ForwardingPolicy,
    GatewayConfig,
    JwtProviderSpec,
    Limits,
    Problem,
    RouteSpec,
    StateSpec,
    StatsAccess,
    TracingSpec,
)
from propylon.config.native import read_native
from propylon.config.native_rate_limits import state_from
from propylon.config.ocelot import read_ocelot
from propylon.config.reader import ReadResult
from propylon.config.seed import read_seed
from propylon.route_analysis import find_conflicts


def load_config(
    path: str,
    *,
    env: Mapping[str, str] | None = None,
    fmt: ConfigFormat | None = None,
) -> GatewayConfig:
    """Read, validate and compile the config at ``path``; raises ConfigError on any error."""
    environment = os.environ if env is None else env
    document = read_document(path)
    return compile_document(document, environment, fmt)


def compile_document(
    document: Document, env: Mapping[str, str], fmt: ConfigFormat | None = None
) -> GatewayConfig:
    format_ = fmt if fmt is not None else detect_format(document.data)
    problems: list[Problem] = duplicate_keys(document)
    result = _read(document, format_, env)
    problems.extend(result.problems)
    providers: dict[str, JwtProviderSpec] = dict(result.providers)
    state = result.state
    if format_ is not ConfigFormat.NATIVE:
        bearer, env_problems = bearer_from_environment(env)
        problems.extend(env_problems)
        if bearer is not None:
            providers[BEARER] = bearer
        # Ocelot and seed files have no state section: Redis comes from the environment.
        env_diag = Diagnostics(ENV_FILE)
        state = state_from({}, env_diag, env, ())
        problems.extend(env_diag.problems)
    routes = result.routes
    signing = result.assertion
    if format_ is ConfigFormat.NATIVE:
        problems.extend(_native_ignores_environment(env))
    else:
        signing, audiences, assertion_problems = assertion.environment_settings(env)
        problems.extend(assertion_problems)
        if signing is not None:
            routes = _with_audiences(routes, audiences, document.file, problems)
    env_failed = any(p.severity == "error" for p in problems if p.file != document.file)
    used: set[str] = set()
    for ref in result.provider_refs:
        used.add(ref.name)
        failed = ref.name in result.attempted_providers or (ref.name == BEARER and env_failed)
        if ref.name in providers or failed:
            continue
        problems.append(Problem(document.file, ref.path, _undefined(ref.name, format_)))
    for name in providers:
        if name not in used and format_ is ConfigFormat.NATIVE:
            problems.append(
                Problem(
                    document.file,
                    render(("auth_providers", name)),
                    "defined but no route or stats section uses it",
                    "warning",
                )
            )
    problems.extend(find_conflicts(routes, document.file))
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems)
    return GatewayConfig(
        source=document.file,
        format=format_,
        routes=routes,
        providers=MappingProxyType(providers),
        base_url=result.base_url,
        request_id_header=result.request_id_header or "X-Request-Id",
        identity_header=result.identity_header or IDENTITY_HEADER,
        trusted_proxies=result.trusted_proxies,
        limits=result.limits or Limits(),
        stats=result.stats or StatsAccess(),
        forwarding=result.forwarding or ForwardingPolicy(),
        plugins=result.plugins,
        tls=result.tls,
        state=state or StateSpec(),
        assertion=signing,
        admin=result.admin,
        tracing=result.tracing or TracingSpec(),
        dns=result.dns or DnsSpec(),
        access_log=result.access_log,
        warnings=tuple(problems),
    )


def _with_audiences(
    routes: tuple[RouteSpec, ...], names: Mapping[str, str], file: str, problems: list[Problem]
) -> tuple[RouteSpec, ...]:
    """Ocelot and seed files with assertions on: every authenticated route signs for its
    downstream service (these formats have no per-route switch)."""
    signed: list[RouteSpec] = []
    for spec in routes:
        if spec.auth is not None:
            try:
                audience = assertion.audience_of(spec.downstream_hosts, names)
            except ValueError as exc:
                where = assertion.VARIABLES["audiences"]
                problems.append(Problem(file, spec.source, f"{exc}: map them to one in {where}"))
            else:
                spec = dataclasses.replace(spec, assertion_audience=audience)
        signed.append(spec)
    return tuple(signed)


def _native_ignores_environment(env: Mapping[str, str]) -> list[Problem]:
    return [
        Problem(
            assertion.ENV_FILE,
            name,
            "ignored: a native config says what it signs in its assertion block",
            "warning",
        )
        for name in assertion.VARIABLES.values()
        if env.get(name, "").strip()
    ]


def _read(document: Document, format_: ConfigFormat, env: Mapping[str, str]) -> ReadResult:
    if format_ is ConfigFormat.OCELOT:
        return read_ocelot(document)
    if format_ is ConfigFormat.SEED:
        return read_seed(document)
    return read_native(document, env)


def _undefined(name: str, format_: ConfigFormat) -> str:
    if format_ is ConfigFormat.NATIVE:
        return f"auth provider {name!r} is not defined under auth_providers"
    if name == BEARER:
        return f"needs the {BEARER!r} auth provider, which is not defined: {HOW_TO_DEFINE}"
    return (
        f"auth provider {name!r} is not defined: {format_.value} files can only use "
        f"{BEARER!r} (from the environment: {HOW_TO_DEFINE}); define {name!r} in a "
        "native config instead"
    )
