"""The effective route table as text, in the order the router tries routes."""

from __future__ import annotations

from propylon.config import claim_headers
from propylon.config.model import AuthRequirement, GatewayConfig, RouteSpec
from propylon.route_templates import route_rank

HEADERS = ("#", "SOURCE", "PRI", "METHODS", "UPSTREAM", "DOWNSTREAM", "AUTH", "TIMEOUT")
COLUMNS = ("position", "source", "priority", "methods", "upstream", "downstream", "auth", "timeout")


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


def table_rows(config: GatewayConfig) -> list[dict[str, str]]:
    """The table's rows, keyed by lower-case column name (``GET /routes`` serves these)."""
    rows: list[dict[str, str]] = []
    for position, spec in enumerate(match_order(config), start=1):
        source = spec.source if spec.name is None else f"{spec.source} ({spec.name})"
        cells = (
            str(position),
            source,
            str(spec.priority),
            describe_methods(spec),
            describe_upstream(spec),
            "-> " + describe_downstream(spec),
            describe_auth(spec.auth) + _identity(config, spec),
            seconds(spec.timeout),
        )
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows


def render_table(config: GatewayConfig) -> str:
    rows = [HEADERS, *(tuple(row.values()) for row in table_rows(config))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join([title(config), *lines])


def title(config: GatewayConfig) -> str:
    count = len(config.routes)
    return (
        f"{config.source}: {count} route{'' if count == 1 else 's'}, "
        f"format {config.format.value}, tried top to bottom"
    )
