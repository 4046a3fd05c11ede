"""``explain`` and the route table, on real compiled configs (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from propylon.config.loader import load_config
from propylon.config.model import GatewayConfig
from propylon.config.route_table import render_table
from propylon.explain import explain, parse_header

CONFIG = """
propylon: 1
identity_header: User
auth_providers:
  Bearer: {secret_env: SECRET}
routes:
  - path: /profiles/{id}
    methods: [GET, PATCH]
    timeout: 5
    downstream: {hosts: ["p1:8000", "p2:8000"], path: "/v1/profiles/{id}"}
    auth: {providers: [Bearer], scopes: [profiles.read], claims: {role: user}}
  - name: admin
    path: /admin/{rest}
    upstream_host: admin.example.com
    downstream: {scheme: https, hosts: ["admin:443"], path: "/{rest}"}
  - path: /{everything}
    downstream: {hosts: ["legacy:80"], path_prefix: /old}
"""


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return load_config(str(path), env={"SECRET": "s" * 32})


def lines(config: GatewayConfig, method: str, url: str, *headers: str) -> list[str]:
    return list(explain(config, method, url, [parse_header(h) for h in headers]).lines)


def test_matched_route_with_placeholders_round_robin_and_auth(config: GatewayConfig) -> None:
    result = explain(config, "get", "/profiles/%7Eann/?b=2", [("User", "mallory")])
    assert result.matched
    assert list(result.lines) == [
        "request:        GET /profiles/%7Eann/?b=2",
        "canonical path: /profiles/~ann/",
        'route:          routes[0] "GET,PATCH /profiles/{id}" (priority 1, methods GET,PATCH)',
        "placeholders:   id='~ann/'",
        "downstream:     http://p1:8000/v1/profiles/~ann/?b=2  (round robin)",
        "                http://p2:8000/v1/profiles/~ann/?b=2",
        "timeout:        5s",
        "auth:           token from Bearer; scope any of profiles.read; claims role=user",
        "                Authorization: Bearer header missing: the gateway would answer 401",
        "note:           the client's 'User' header is removed before forwarding",
    ]


def test_host_comes_from_the_url_or_a_host_header(config: GatewayConfig) -> None:
    via_url = lines(config, "GET", "http://admin.example.com:8000/admin/x/y")
    assert via_url[0] == "request:        GET /admin/x/y  (Host: admin.example.com:8000)"
    assert via_url[2] == 'route:          routes[1] "admin" (priority 1, methods *)'
    assert via_url[4] == "downstream:     https://admin:443/x/y"
    header = lines(config, "GET", "http://other/admin/x", "Host: ADMIN.example.com")
    assert header[2].startswith("route:          routes[1]")
    # without the host the catch-all takes it, with the path prefix in front
    other = lines(config, "GET", "/admin/x")
    assert other[2] == ('route:          routes[2] "* /{everything}" (priority 0, methods *)')
    assert "downstream:     http://legacy:80/old/admin/x" in other


def test_refusals_say_why(config: GatewayConfig) -> None:
    tight = config.routes[:1]
    only_profiles = GatewayConfig(
        source="t", format=config.format, routes=tight, providers=config.providers
    )
    assert lines(only_profiles, "DELETE", "/profiles/1")[-1] == (
        "result:         405 MethodNotAllowed: the path matches, the method does not; "
        "Allow: GET, PATCH"
    )
    assert lines(only_profiles, "GET", "/nothing")[-1] == (
        "result:         404 RouteNotFound: no route matches GET /nothing"
    )
    assert lines(config, "GET", "/a/%2e%2e/etc")[-1] == (
        "result:         400 BadRequest: path rejected (encoded dot segment)"
    )
    assert not explain(config, "GET", "/a/..%2f").matched


def test_stats_path_is_served_before_routes(config: GatewayConfig) -> None:
    result = explain(config, "GET", "/stats")
    assert result.matched
    assert result.lines[-2] == (
        "result:         served by the gateway's stats endpoint, not by a route"
    )


def test_token_presence_is_reported(config: GatewayConfig) -> None:
    assert (
        "                Authorization: Bearer header given (explain does not verify tokens)"
        in lines(config, "GET", "/profiles/1", "Authorization: Bearer abc")
    )


def test_parse_header() -> None:
    assert parse_header("X-A:  b c ") == ("X-A", "b c")
    with pytest.raises(ValueError, match="expected 'Name: value'"):
        parse_header("no colon")


def test_route_table_in_match_order(config: GatewayConfig) -> None:
    table = render_table(config).splitlines()
    assert table[0].endswith("gateway.yaml: 3 routes, format native, tried top to bottom")
    assert table[1].split() == [
        "#",
        "SOURCE",
        "PRI",
        "METHODS",
        "UPSTREAM",
        "DOWNSTREAM",
        "AUTH",
        "TIMEOUT",
    ]
    # the host-bound route first, the catch-all last
    assert table[2].split()[:3] == ["1", "routes[1]", "(admin)"]
    assert "/admin/{rest} (host admin.example.com)" in table[2]
    assert "-> https://admin:443/{rest}" in table[2]
    assert table[3].split()[:2] == ["2", "routes[0]"]
    assert "-> http://p1:8000,p2:8000/v1/profiles/{id}" in table[3]
    assert "token from Bearer; scope any of profiles.read; claims role=user" in table[3]
    assert table[3].rstrip().endswith("5s")
    assert "-> http://legacy:80/old<request path>" in table[4]
    assert " public " in table[4]
