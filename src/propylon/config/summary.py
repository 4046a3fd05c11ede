"""What ``check`` prints and ``run`` logs about who may call what: the routes served without
a token, and the routes that send a claim other than the ``sub`` as the identity header.

A route is public by omission (no ``AuthenticationOptions``, no ``auth``), so a slip in a
file shows up here rather than nowhere.
"""

from __future__ import annotations

from propylon.config import claim_headers
from propylon.config.model import GatewayConfig, RouteSpec


def public_routes(config: GatewayConfig) -> list[RouteSpec]:
    return [spec for spec in config.routes if spec.auth is None]


def _row(spec: RouteSpec) -> str:
    return f"  {spec.source}  {spec.label}"


def public_lines(config: GatewayConfig) -> list[str]:
    public = public_routes(config)
    total = len(config.routes)
    if not public:
        return [f"public routes (served without a token): none of {total}"]
    return [
        f"public routes (served without a token): {len(public)} of {total}",
        *(_row(spec) for spec in public),
    ]


def identity_lines(config: GatewayConfig) -> list[str]:
    """Which claim the identity header carries; nothing when no route authenticates."""
    authenticated = [spec for spec in config.routes if spec.auth is not None]
    if not authenticated:
        return []
    head = f"identity header {config.identity_header}: the token's sub"
    other = [spec for spec in authenticated if spec.identity_claim is not None]
    if not other:
        return [f"{head} on every authenticated route"]
    lines = [f"{head}, except on {len(other)} route{'' if len(other) == 1 else 's'}:"]
    for spec in other:
        assert spec.identity_claim is not None
        lines.append(f"{_row(spec)}: {claim_headers.describe(spec.identity_claim)}")
    return lines


def assertion_lines(config: GatewayConfig) -> list[str]:
    """Which authenticated routes carry a signed gateway assertion, and for which audience."""
    authenticated = [spec for spec in config.routes if spec.auth is not None]
    settings = config.assertion
    if not authenticated:
        return []
    if settings is None:
        return ["signed gateway assertions: off (services see only the identity header)"]
    unsigned = [spec for spec in authenticated if spec.assertion_audience is None]
    audiences = sorted({s.assertion_audience for s in authenticated if s.assertion_audience})
    lines = [
        f"signed gateway assertions: on {len(authenticated) - len(unsigned)} of "
        f"{len(authenticated)} authenticated routes, key {settings.key_file}, "
        f"audiences {', '.join(audiences) or 'none'}"
    ]
    if unsigned:
        lines.append("  without one (opted out):")
        lines.extend(f"  {_row(spec)}" for spec in unsigned)
    return lines


def summary_lines(config: GatewayConfig) -> list[str]:
    return [*public_lines(config), *identity_lines(config), *assertion_lines(config)]
