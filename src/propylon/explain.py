"""``propylon explain``: what the gateway would do with one request, without sending it.

It runs the same steps the data plane runs (canonical path, stats endpoint, router) on the
same compiled objects, so what it prints is what would happen; it does not verify tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from propylon.config import claim_headers
from propylon.config.model import GatewayConfig, RouteSpec
from propylon.config.route_table import describe_auth, describe_methods, seconds
from propylon.paths import PathRejected, canonicalise
from propylon.routing import MethodNotAllowed, NoRoute, RouteMatch, Router


@dataclass(frozen=True, slots=True)
class Explanation:
    lines: tuple[str, ...]
    matched: bool
    """True when a route (or the stats endpoint) would serve the request."""

    def __str__(self) -> str:
        return "\n".join(self.lines)


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` as given to ``-H``; ValueError when there is no name."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def explain(
    config: GatewayConfig,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    router: Router | None = None,
) -> Explanation:
    method = method.upper()
    host = next((v for n, v in headers if n.lower() == "host"), None)
    if url.startswith("/"):
        raw_path, _, query = url.partition("?")
        raw_path = raw_path.partition("#")[0]
        query = query.partition("#")[0]
    else:
        parts = urlsplit(url)
        raw_path, query = parts.path or "/", parts.query
        host = host if host is not None else (parts.netloc.rpartition("@")[2] or None)
    shown = raw_path + (f"?{query}" if query else "")
    out = [_row("request", f"{method} {shown}" + (f"  (Host: {host})" if host else ""))]
    try:
        path = canonicalise(raw_path, allow_double_encoding=config.forwarding.allow_double_encoding)
    except PathRejected as exc:
        out.append(_row("result", f"400 BadRequest: path rejected ({exc.reason})"))
        return Explanation(tuple(out), matched=False)
    out.append(_row("canonical path", path))
    if config.stats.enabled and path == config.stats.path:
        out.append(_row("result", "served by the gateway's stats endpoint, not by a route"))
        out.append(
            _row(
                "access",
                "clients in "
                + ", ".join(config.stats.allow_cidrs)
                + (f"; or {describe_auth(config.stats.auth)}" if config.stats.auth else ""),
            )
        )
        return Explanation(tuple(out), matched=True)
    result = (router or Router(config.routes)).match(method, host, path, query)
    if isinstance(result, MethodNotAllowed):
        out.append(
            _row(
                "result",
                "405 MethodNotAllowed: the path matches, the method does "
                "not; Allow: " + ", ".join(result.allowed),
            )
        )
        return Explanation(tuple(out), matched=False)
    if isinstance(result, NoRoute) or not isinstance(result, RouteMatch):
        out.append(
            _row(
                "result",
                f"404 RouteNotFound: no route matches {method} {path}"
                + (f" for host {host}" if host else ""),
            )
        )
        return Explanation(tuple(out), matched=False)
    out.extend(_matched(config, result, path, query, headers, method))
    return Explanation(tuple(out), matched=True)


def _matched(
    config: GatewayConfig,
    match: RouteMatch,
    path: str,
    query: str,
    headers: Sequence[tuple[str, str]],
    method: str = "GET",
) -> list[str]:
    spec = match.route.spec
    out = [
        _row(
            "route",
            f'{spec.source} "{spec.label}" (priority {spec.priority}, '
            f"methods {describe_methods(spec)})",
        )
    ]
    if match.params:
        out.append(_row("placeholders", ", ".join(f"{k}={v!r}" for k, v in match.params.items())))
    target = match.downstream_target(path, query)
    urls = [f"{spec.downstream_scheme}://{host}{target}" for host in spec.downstream_hosts]
    note = "  (round robin)" if len(urls) > 1 else ""
    out.append(_row("downstream", urls[0] + note))
    out.extend(_row("", other) for other in urls[1:])
    out.append(_row("timeout", seconds(spec.timeout)))
    out.extend(_edge(spec))
    out.append(_row("auth", describe_auth(spec.auth)))
    if spec.identity_claim is not None:
        claim = claim_headers.describe(spec.identity_claim)
        out.append(_row("identity", f"{config.identity_header} from the token's {claim}"))
    if spec.auth is not None and spec.anonymous_options and method == "OPTIONS":
        out.append(_row("", "this OPTIONS request skips it: no token needed, no identity sent"))
    elif spec.auth is not None:
        has_token = any(
            n.lower() == "authorization" and v.lower().startswith("bearer ") for n, v in headers
        )
        out.append(
            _row(
                "",
                "Authorization: Bearer header "
                + (
                    "given (explain does not verify tokens)"
                    if has_token
                    else "missing: the gateway would answer 401"
                ),
            )
        )
    identity = config.identity_header.lower()
    if any(n.lower() == identity for n, _ in headers):
        out.append(
            _row(
                "note",
                f"the client's {config.identity_header!r} header is removed before forwarding",
            )
        )
    return out


def _edge(spec: RouteSpec) -> list[str]:
    """The route's IP rules and CORS policy, and what they mean for this request."""
    out: list[str] = []
    rules = spec.ip_rules
    if rules:
        parts = [f"allow {', '.join(rules.allowed)}"] if rules.allowed else []
        if rules.blocked:
            parts.append(f"block {', '.join(rules.blocked)}")
        if rules.exclude_allowed_from_blocked:
            parts.append("allowed addresses excluded from the block")
        out.append(_row("ip rules", "; ".join(parts) + " (else 403)"))
    cors = spec.cors
    if cors is not None:
        text = "origins " + ", ".join(cors.origins)
        if cors.credentials:
            text += "; with credentials"
        out.append(_row("cors", text + "; preflights answered by the gateway"))
    if spec.anonymous_options and spec.auth is not None:
        out.append(_row("options", "OPTIONS requests skip authentication (sent without identity)"))
    return out


def _row(label: str, text: str) -> str:
    return f"{label + ':' if label else '':<16}{text}"
