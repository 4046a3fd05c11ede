"""The ip_filter, cors and authentication stages on real flows: a parsed request, the
chain that runs them and the stages ``plane/build.py`` chooses for a route (only the
engine's side, where a flow ends, is stood in for)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from propylon import errors
from propylon.auth import Authenticator
from propylon.config.model import (
    AuthRequirement,
    ConfigFormat,
    CorsPolicy,
    DownstreamHost,
    GatewayConfig,
    IpRules,
    JwtProviderSpec,
    RouteSpec,
)
from propylon.http.request import HeaderRules, Request, sort_headers
from propylon.plane.build import Site, route_stages
from propylon.plane.stage import CONTINUE, RESPOND, Flow, RequestStage
from propylon.policies.claim_headers import ClaimHeaders
from propylon.policies.cors import CorsRules
from propylon.policies.forwarding import TrustedProxies
from propylon.policies.identity import IdentityHeader
from propylon.policies.ip_rules import IpPolicy
from propylon.stages.authn import Authenticate, Identify
from propylon.stages.cors import Cors
from propylon.stages.ip_filter import IpFilter
from tests.support.gateway import SECRET, token


class Peer:
    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.local_port = 8000
        self.scheme = b"http"

    def gone(self) -> bool:
        return False


class Addressing:
    def __init__(self, proxies: TrustedProxies) -> None:
        self.proxies = proxies

    def client_address(self, peer: str, forwarded_for: list[bytes]) -> str:
        return self.proxies.client_address(peer, forwarded_for)


class _NoResume:
    def resume(self, flow: Flow, outcome: int) -> None:
        raise AssertionError("no stage here waits")


def _no_spawn(work: Coroutine[Any, Any, None]) -> None:
    work.close()
    raise AssertionError("no stage here waits")


def run(
    stages: tuple[RequestStage, ...],
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (),
    *,
    peer: str = "127.0.0.1",
    trusted: tuple[str, ...] = (),
) -> tuple[Flow, bool]:
    """Run a request through ``stages``; (its flow, whether it went upstream)."""
    request = Request(method.encode(), b"/a", True, True)
    raw = [(b"Host", b"api")] + [(n.encode(), v.encode()) for n, v in headers]
    sort_headers(request, raw, HeaderRules(frozenset({b"user"}), b"x-request-id"))
    flow = Flow(
        Peer(peer), request, b"/a", 0, Addressing(TrustedProxies(trusted)), _NoResume(), _no_spawn
    )
    # The chain's own loop, as plane/chain.py runs it (Chain's ending is a compiled trait,
    # which a test's interpreted class cannot implement).
    for stage in stages:
        outcome = stage.on_request(flow)
        assert outcome in (CONTINUE, RESPOND)
        if outcome == RESPOND:
            assert flow.reply is not None
            return flow, False
    return flow, True


def lines(flow: Flow) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in flow.response_lines or []:
        name, _, value = line.decode().partition(": ")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def reply_lines(flow: Flow) -> dict[str, str]:
    assert flow.reply is not None
    return dict(line.decode().split(": ", 1) for line in flow.reply.lines)


# -- ip_filter ------------------------------------------------------------------------------


def ip_filter(allowed: tuple[str, ...] = (), blocked: tuple[str, ...] = ()) -> IpFilter:
    return IpFilter(IpPolicy(IpRules(allowed, blocked)))


def test_ip_filter_refuses_with_the_restricted_envelope() -> None:
    flow, forwarded = run((ip_filter(blocked=("127.0.0.0/8",)),))
    assert not forwarded
    assert flow.reply is not None and flow.reply.kind is errors.ADDRESS_REFUSED
    assert (flow.reply.status, flow.reply.kind.code) == (403, 409)
    _, forwarded = run((ip_filter(allowed=("127.0.0.1",)),))
    assert forwarded


def test_a_spoofed_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    stage = ip_filter(allowed=("203.0.113.7",))
    spoof = (("X-Forwarded-For", "203.0.113.7"),)
    _, forwarded = run((stage,), headers=spoof, peer="198.51.100.1")
    assert not forwarded  # the peer is nobody's proxy: its own address is judged
    _, forwarded = run((stage,), headers=spoof, peer="10.0.0.2", trusted=("10.0.0.0/8",))
    assert forwarded
    blocked = ip_filter(blocked=("203.0.113.7",))
    _, forwarded = run((blocked,), headers=spoof, peer="10.0.0.2", trusted=("10.0.0.0/8",))
    assert not forwarded
    # a trusted proxy cannot be used to hide a blocked client behind a forged left-most hop
    forged = (("X-Forwarded-For", "198.51.100.9, 203.0.113.7"),)
    _, forwarded = run((blocked,), headers=forged, peer="10.0.0.2", trusted=("10.0.0.0/8",))
    assert not forwarded


# -- cors -------------------------------------------------------------------------------------


def cors(**kw: Any) -> Cors:
    policy = CorsPolicy(origins=kw.pop("origins", ("https://app.example",)), **kw)
    return Cors(CorsRules(policy))


PREFLIGHT = (
    ("Origin", "https://app.example"),
    ("Access-Control-Request-Method", "PUT"),
    ("Access-Control-Request-Headers", "content-type, authorization"),
)


def test_a_preflight_from_an_allowed_origin_is_answered_here() -> None:
    flow, forwarded = run((cors(credentials=True, max_age=600),), "OPTIONS", PREFLIGHT)
    assert not forwarded and flow.reply is not None
    assert flow.reply.status == 204 and flow.reply.kind is None
    got = reply_lines(flow)
    assert got["Access-Control-Allow-Origin"] == "https://app.example"
    assert got["Access-Control-Allow-Credentials"] == "true"
    assert got["Access-Control-Allow-Methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE"
    assert got["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert got["Access-Control-Max-Age"] == "600"
    assert got["Vary"].startswith("Origin")


@pytest.mark.parametrize(
    "headers",
    [
        (("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")),
        (("Origin", "https://app.example"), ("Access-Control-Request-Method", "TRACE")),
        (
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-secret"),
        ),
        (("Origin", "null"), ("Access-Control-Request-Method", "GET")),
    ],
)
def test_a_refused_preflight_is_a_403_without_cors_headers(
    headers: tuple[tuple[str, str], ...],
) -> None:
    flow, forwarded = run((cors(),), "OPTIONS", headers)
    assert not forwarded and flow.reply is not None
    assert flow.reply.kind is errors.ORIGIN_REFUSED and flow.reply.status == 403
    assert flow.reply.headers == (("Vary", "Origin"),)
    assert not any(n.startswith("Access-Control") for n, _ in flow.reply.headers)
    assert not lines(flow)


def test_wildcards_name_what_was_asked_and_any_origin_is_a_literal_star() -> None:
    flow, _ = run((cors(origins=("*",), methods=("*",), headers=("*",)),), "OPTIONS", PREFLIGHT)
    got = reply_lines(flow)
    assert got["Access-Control-Allow-Origin"] == "*"
    assert got["Access-Control-Allow-Methods"] == "PUT"
    assert got["Access-Control-Allow-Headers"] == "content-type, authorization"
    assert "Access-Control-Allow-Credentials" not in got


def test_actual_requests_get_the_origin_lines_or_only_vary() -> None:
    stage = cors(credentials=True, expose_headers=("X-Request-Id",))
    flow, forwarded = run((stage,), "POST", (("Origin", "https://app.example"),))
    assert forwarded
    assert lines(flow) == {
        "Access-Control-Allow-Origin": "https://app.example",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Request-Id",
        "Vary": "Origin",
    }
    flow, forwarded = run((stage,), "POST", (("Origin", "https://evil.example"),))
    assert forwarded and lines(flow) == {"Vary": "Origin"}
    flow, forwarded = run((stage,), "GET")
    assert forwarded and lines(flow) == {"Vary": "Origin"}
    flow, forwarded = run((cors(origins=("*",)),), "GET", (("Origin", "https://x.example"),))
    assert forwarded and lines(flow) == {"Access-Control-Allow-Origin": "*"}
    flow, forwarded = run((cors(origins=("*",)),), "GET")
    assert forwarded and flow.response_lines is None


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://a.example.com", True),
        ("https://a.b.example.com", True),
        ("https://A.Example.COM", True),
        ("https://example.com", False),
        ("http://a.example.com", False),
        ("https://a.example.com:8443", False),
        ("https://evil.com/.example.com", False),
        ("https://a.example.com.evil.com", False),
        ("https://a_b.example.com", False),
        ("http://localhost", True),
        ("http://localhost:3000", True),
        ("http://localhost.evil:3000", False),
        ("https://app.example", True),
    ],
)
def test_origin_patterns(origin: str, allowed: bool) -> None:
    rules = CorsRules(
        CorsPolicy(origins=("https://*.example.com", "http://localhost:*", "https://app.example"))
    )
    assert rules.allows(origin.encode()) is allowed


def test_an_options_request_that_is_no_preflight_on_a_route_without_options_is_405() -> None:
    stage = cors(route_methods=frozenset({"GET", "POST"}))
    flow, forwarded = run((stage,), "OPTIONS", (("Origin", "https://app.example"),))
    assert not forwarded and flow.reply is not None
    assert flow.reply.kind is errors.METHOD_NOT_ALLOWED
    assert flow.reply.headers == (("Allow", "GET, POST"),)
    _, forwarded = run((cors(),), "OPTIONS", (("Origin", "https://app.example"),))
    assert forwarded  # the route serves OPTIONS itself


# -- authentication and OPTIONS ---------------------------------------------------------------


def auth_stages(anonymous_options: bool) -> tuple[RequestStage, ...]:
    provider = JwtProviderSpec(name="Bearer", algorithms=("HS256",), secret=SECRET)
    requirement = AuthRequirement(providers=("Bearer",))
    authenticator = Authenticator({"Bearer": provider}, cache_size=16)
    return (
        Authenticate(authenticator, requirement, anonymous_options=anonymous_options),
        Identify(
            IdentityHeader("User"), None, ClaimHeaders(()), anonymous_options=anonymous_options
        ),
    )


def test_options_skips_authentication_only_where_the_route_says_so() -> None:
    flow, forwarded = run(auth_stages(True), "OPTIONS", (("User", "mallory"),))
    assert forwarded and flow.principal is None and flow.upstream_lines == []
    # not even a valid token makes an OPTIONS request someone
    bearer = (("Authorization", f"Bearer {token('alice')}"),)
    flow, forwarded = run(auth_stages(True), "OPTIONS", bearer)
    assert forwarded and flow.upstream_lines == []
    flow, forwarded = run(auth_stages(False), "OPTIONS")
    assert not forwarded and flow.reply is not None and flow.reply.kind is errors.UNAUTHORIZED
    flow, forwarded = run(auth_stages(False), "OPTIONS", bearer)
    assert forwarded and flow.upstream_lines == [b"User: alice"]
    # and other methods still need the token
    flow, forwarded = run(auth_stages(True), "GET")
    assert not forwarded and flow.reply is not None and flow.reply.kind is errors.UNAUTHORIZED


async def test_build_puts_the_stages_in_phase_order_and_a_plain_route_has_none() -> None:
    hosts = (DownstreamHost("h", 1),)
    plain = RouteSpec(source="r", upstream_path="/a", downstream_hosts=hosts)
    full = RouteSpec(
        source="r",
        upstream_path="/a",
        downstream_hosts=hosts,
        ip_rules=IpRules(("10.0.0.0/8",)),
        cors=CorsPolicy(origins=("*",)),
        auth=AuthRequirement(providers=("Bearer",)),
    )
    no_addresses = RouteSpec(
        source="r", upstream_path="/a", downstream_hosts=hosts, ip_rules=IpRules((), (), True)
    )
    cfg = GatewayConfig(source="t", format=ConfigFormat.NATIVE, routes=(plain, full))
    site = Site(cfg, Authenticator({}, cache_size=0), IdentityHeader("User"), _no_spawn)
    assert route_stages(plain, site) == ()
    assert [s.name for s in route_stages(full, site)] == [
        "ip_filter",
        "cors",
        "authenticate",
        "identify",
    ]
    assert route_stages(no_addresses, site) == ()
