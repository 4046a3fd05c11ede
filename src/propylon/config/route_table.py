"""The effective route table as text, in the order the router tries routes."""

from __future__ import annotations

from propylon.config import claim_headers
from propylon.config.model import AuthRequirement, GatewayConfig, RouteSpec
from propylon.route_templates import route_rank

HEADERS = ("#", "SOURCE", "PRI", "METHODS", "UPSTREAM", "DOWNSTREAM", "AUTH", "TIMEOUT")


def match_order(config: GatewayConfig) -> list[RouteSpec]:
    """Routes with an upstream host first, then higher priority, then file order."""
    indexed = sorted(enumerate(config.routes), key=lambda item: route_rank(item[1], item[0]))
    return [spec for _, spec in indexed]


def describe_auth(auth: AuthRequirement | None) -> str:
    if auth is None:
        return "public"
    parts = ["token from " + " or ".join(auth.providers)]
    if auth.allowed_scopes:
        parts.append("scope any of " + ", ".join(auth.allowed_scopes))
    if auth.required_claims:
        parts.append("claims " + ", ".join(f"{k}={v}" for k, v in auth.required_claims))
    return "; ".join(parts)


def describe_upstream(spec: RouteSpec) -> str:
    kind = "regex " if spec.path_is_regex else ""
    host = f" (host {spec.upstream_host})" if spec.upstream_host else ""
    case = " (case-sensitive)" if spec.case_sensitive and not spec.path_is_regex else ""
    return f"{kind}{spec.upstream_path}{host}{case}"


def describe_downstream(spec: RouteSpec) -> str:
    hosts = ",".join(str(h) for h in spec.downstream_hosts)
    path = spec.downstream_path
    if path is None:
        path = f"{spec.downstream_path_prefix}<request path>"
    return f"{spec.downstream_scheme}://{hosts}{path}"


def describe_methods(spec: RouteSpec) -> str:
    return ",".join(sorted(spec.methods)) if spec.methods else "*"


def seconds(value: float) -> str:
    return f"{value:g}s"


def _identity(config: GatewayConfig, spec: RouteSpec) -> str:
    """Only where it is not the ``sub``: the column stays short on ordinary routes."""
    if spec.identity_claim is None:
        return ""
    return f"; {config.identity_header} from {claim_headers.describe(spec.identity_claim)}"


def render_table(config: GatewayConfig) -> str:
    rows = [HEADERS]
    for position, spec in enumerate(match_order(config), start=1):
        source = spec.source if spec.name is None else f"{spec.source} ({spec.name})"
        rows.append(
            (
                str(position),
                source,
                str(spec.priority),
                describe_methods(spec),
                describe_upstream(spec),
                "-> " + describe_downstream(spec),
                describe_auth(spec.auth) + _identity(config, spec),
                seconds(spec.timeout),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    count = len(config.routes)
    title = (
        f"{config.source}: {count} route{'' if count == 1 else 's'}, "
        f"format {config.format.value}, tried top to bottom"
    )
    return "\n".join([title, *lines])
