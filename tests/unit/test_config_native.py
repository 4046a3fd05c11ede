"""The native format: every section, strict types, and key paths of its mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from propylon.config.loader import load_config
from propylon.config.model import (
    AuthRequirement,
    ConfigError,
    ConfigFormat,
    DownstreamHost,
    GatewayConfig,
    Limits,
    StatsAccess,
)

ENV = {"GW_SECRET": "x" * 40}

MINIMAL_ROUTE = """
  - path: /users/{id}
    downstream: {hosts: ["users:8000"], path: "/v1/users/{id}"}
"""


def load(
    tmp_path: Path, text: str, env: dict[str, str] | None = None, name: str = "gateway.yaml"
) -> GatewayConfig:
    path = tmp_path / name
    path.write_text(text)
    return load_config(str(path), env=ENV if env is None else env)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return [f"{p.path}: {p.severity}: {p.message}" for p in caught.value.problems]


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "propylon: 1\nroutes:" + MINIMAL_ROUTE)
    assert config.format is ConfigFormat.NATIVE
    (spec,) = config.routes
    assert spec.source == "routes[0]"
    assert spec.methods == frozenset()
    assert spec.downstream_hosts == (DownstreamHost("users", 8000),)
    assert spec.downstream_path == "/v1/users/{id}"
    assert spec.timeout == 30.0 and spec.priority == 1 and spec.auth is None
    assert config.identity_header == "User"
    assert config.request_id_header == "X-Request-Id"
    assert config.limits == Limits()
    assert config.stats == StatsAccess()
    assert config.warnings == ()


def test_every_setting_is_carried_into_the_model(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
propylon: 1
base_url: https://api.example.com
identity_header: X-User
request_id_header: X-Correlation-Id
trusted_proxies: [10.0.0.0/8, "fd00::/8"]
limits: {max_body_bytes: 1024, max_header_bytes: 2048, max_headers: 10, max_url_bytes: 512,
         header_timeout: 2, keepalive_timeout: 3, connect_timeout: 1.5, drain_timeout: 0,
         upstream_pool_size: 0, token_cache_size: 0}
stats: {enabled: false, path: /_stats, allow_cidrs: [192.168.0.0/16],
        auth: {providers: Main, scopes: [ops]}}
auth_providers:
  Main:
    secret_env: GW_SECRET
    algorithms: [HS512]
    issuer: https://id.example.com
    audience: api
    leeway: 5
routes:
  - name: all-users
    methods: [get, Post]
    path_regex: ^/users(?:/(?P<rest>.*))?$
    upstream_host: api.example.com
    case_sensitive: true
    priority: 7
    timeout: 2.5
    downstream:
      scheme: https
      hosts: ["a:1", "10.0.0.2", "[::1]:9443"]
      path: /v2/{rest}
    auth: {providers: [Main], scopes: [read, write], claims: {role: admin}}
  - path: /{anything}
    downstream: {hosts: [legacy], path_prefix: /old}
""",
    )
    assert config.base_url == "https://api.example.com"
    assert (config.identity_header, config.request_id_header) == ("X-User", "X-Correlation-Id")
    assert config.trusted_proxies == ("10.0.0.0/8", "fd00::/8")
    assert config.limits == Limits(1024, 2048, 10, 512, 2.0, 3.0, 1.5, 0.0, 0, 0)
    assert config.stats == StatsAccess(
        enabled=False,
        path="/_stats",
        allow_cidrs=("192.168.0.0/16",),
        auth=AuthRequirement(providers=("Main",), allowed_scopes=("ops",)),
    )
    main = config.providers["Main"]
    assert main.secret == b"x" * 40 and main.algorithms == ("HS512",)
    assert main.issuer == "https://id.example.com" and main.audience == ("api",)
    assert main.leeway == 5.0
    users, legacy = config.routes
    assert users.name == "all-users" and users.label == "all-users"
    assert users.methods == frozenset({"GET", "POST"})
    assert users.path_is_regex and users.case_sensitive
    assert (users.upstream_host, users.priority, users.timeout) == ("api.example.com", 7, 2.5)
    assert users.downstream_scheme == "https"
    assert users.downstream_hosts == (
        DownstreamHost("a", 1),
        DownstreamHost("10.0.0.2", 443),
        DownstreamHost("::1", 9443),
    )
    assert users.auth == AuthRequirement(("Main",), ("read", "write"), (("role", "admin"),))
    assert legacy.priority == 0  # a /{catch-all} defaults below everything else
    assert legacy.downstream_path is None and legacy.downstream_path_prefix == "/old"
    assert legacy.downstream_hosts == (DownstreamHost("legacy", 80),)


def test_unknown_keys_and_wrong_types_are_errors(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
propylon: 1
rutes: []
limits: {max_body_bytes: "10MB", max_headers: 0, header_timeout: -1, bogus: 1}
routes:
  - path: /a
    auth_requried: true
    downstream: {hosts: ["a:1"]}
  - path: /b
    timeout: "5"
    case_sensitive: "yes"
    downstream: {hosts: "b:1", port: 2}
""",
    ) == [
        "rutes: error: unknown key; did you mean routes?",
        'limits.max_body_bytes: error: must be an integer, got "10MB"',
        "limits.max_headers: error: must be >= 1, got 0",
        "limits.header_timeout: error: must be > 0, got -1",
        "limits.bogus: error: unknown key",
        "routes[0].auth_requried: error: unknown key",
        'routes[1].case_sensitive: error: must be true or false, got "yes"',
        'routes[1].timeout: error: must be a number, got "5"',
        "routes[1].downstream.port: error: unknown key",
    ]


def test_route_semantics_have_key_paths(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
routes:
  - path: /a/{id}
    path_regex: ^/a$
    downstream: {hosts: ["a:1"]}
  - methods: [GET, BREW]
    path: /b/{id}
    timeout: 0
    downstream: {scheme: gopher, hosts: ["b:1", "http://c:2", "d:0"], path: "/x/{other}"}
  - path_regex: ^/c/(?P<id>[0-9]+$
    downstream: {hosts: []}
  - path_regex: ^/d/(?P<id>[0-9]+)$
    downstream: {hosts: ["d:1"], path: "/d/{id}/{nope}"}
  - path: /e
    downstream: {hosts: ["e:1"], path: /e, path_prefix: /x}
  - path: /f
    downstream: {hosts: ["f:1"], path_prefix: /x/}
  - path: /g
    upstream_host: "http://g"
    downstream: {hosts: ["g:1"]}
    auth: {providers: []}
""",
    ) == [
        "routes[0]: error: give exactly one of path (a template such as /users/{id}) or path_regex",
        "routes[1].methods[1]: error: unknown HTTP method 'BREW'; use one of DELETE, GET, HEAD, "
        "OPTIONS, PATCH, POST, PUT",
        "routes[1].downstream.scheme: error: scheme must be http or https, got 'gopher'",
        "routes[1].downstream.hosts[1]: error: write host:port without a scheme, got 'http://c:2'",
        "routes[1].downstream.hosts[2]: error: port must be 1-65535, got 0",
        "routes[1].downstream.path: error: placeholder {other} is not captured by the upstream "
        "side (path '/b/{id}')",
        "routes[1].timeout: error: timeout must be a positive number of seconds, got 0.0",
        "routes[2].path_regex: error: invalid regular expression: missing ), unterminated "
        "subpattern at position 4",
        "routes[2].downstream.hosts: error: at least one host:port is required",
        "routes[3].downstream.path: error: placeholder {nope} is not captured by the upstream "
        "side (path_regex '^/d/(?P<id>[0-9]+)$')",
        "routes[4].downstream.path_prefix: error: path_prefix only applies when downstream.path "
        "is not given",
        "routes[5].downstream.path_prefix: error: must look like /api (leading '/', no trailing "
        "'/', no '.' or '..' segments, no query), got '/x/'",
        "routes[6].upstream_host: error: write host:port without a scheme, got 'http://g'",
        "routes[6].auth.providers: error: at least one provider name is required",
    ]


def test_gateway_settings_are_checked(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
propylon: 2
base_url: ftp://x
identity_header: Transfer-Encoding
request_id_header: "Bad Header"
trusted_proxies: [10.0.0.1/8, nonsense]
stats: {path: /a/../stats, allow_cidrs: [1.2.3.4/33]}
routes: []
""",
    ) == [
        "propylon: error: unsupported format version 2; this propylon reads version 1",
        "base_url: error: base_url must start with http:// or https://, got 'ftp://x'",
        "identity_header: error: 'Transfer-Encoding' cannot carry the caller's identity: it is "
        "a hop-by-hop, framing or gateway-owned header",
        "request_id_header: error: not a valid header name (RFC 9110 token): 'Bad Header'",
        "trusted_proxies[0]: error: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?",
        "trusted_proxies[1]: error: 'nonsense' is not an IP address, network or range",
        "stats.path: error: must be a plain absolute path such as /stats, got '/a/../stats'",
        "stats.allow_cidrs[0]: error: '1.2.3.4/33': an IPv4 prefix is 0-32, got /33",
        "routes: warning: no routes: every request will be answered 404",
    ]


def test_identity_and_request_id_headers_must_differ(tmp_path: Path) -> None:
    assert problems(
        tmp_path, "identity_header: x-id\nrequest_id_header: X-Id\nroutes:" + MINIMAL_ROUTE
    ) == ["identity_header: error: must differ from request_id_header"]


def test_duplicate_route_names(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
routes:
  - {name: x, path: /a, downstream: {hosts: [a]}}
  - {name: x, path: /b, downstream: {hosts: [b]}}
""",
    ) == ["routes[1].name: error: name 'x' is already used by routes[0]"]


def test_providers_by_name(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
auth_providers:
  A: {secret_env: MISSING}
  B: {secret: s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t, secret_env: GW_SECRET}
  C: {}
  D: {secret_env: GW_SECRET, algorithms: [RS256]}
  E: {jwks_url: "https://keys.example/jwks.json", algorithms: [HS256]}
  F: {jwks_url: "https://keys.example/jwks.json", algorithms: [none]}
routes:
  - path: /a
    downstream: {hosts: [a]}
    auth: {providers: [A, B, C, D, E, F, Z]}
""",
    ) == [
        "auth_providers.A.secret_env: error: environment variable MISSING is not set or empty",
        "auth_providers.B.secret_env: error: give secret or secret_env, not both",
        "auth_providers.C.secret: error: provider 'C' needs exactly one key source (secret / "
        "secret_env, public_key_file, jwks_url); none given",
        "auth_providers.D.algorithms: error: RS256 needs a public key or JWKS; a shared secret "
        "can only verify HS256/384/512",
        "auth_providers.E.algorithms: error: HS256 is an HMAC algorithm and cannot be used with "
        "a public key or JWKS (that is the HS/RS key-confusion attack)",
        "auth_providers.F.algorithms: error: 'none' is never accepted: unsigned tokens prove "
        "nothing",
        "routes[0].auth.providers[6]: error: auth provider 'Z' is not defined under auth_providers",
    ]


def test_unused_provider_and_plain_http_jwks_warn(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
auth_providers:
  Spare: {jwks_url: "http://keys.internal/jwks.json"}
routes:"""
        + MINIMAL_ROUTE,
    )
    assert [f"{p.path}: {p.message}" for p in config.warnings] == [
        "auth_providers.Spare.jwks_url: JWKS fetched over plain http: anyone on the network "
        "path can substitute signing keys; use https",
        "auth_providers.Spare: defined but no route or stats section uses it",
    ]
    assert config.providers["Spare"].algorithms == ("RS256",)


def test_json_native_file(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '{"propylon": 1, "routes": [{"path": "/a", "methods": "*", '
        '"downstream": {"hosts": ["a:1"]}}]}',
        name="gateway.json",
    )
    assert config.routes[0].methods == frozenset()
    assert config.routes[0].downstream_path is None


def test_duplicate_routes_come_from_route_analysis(tmp_path: Path) -> None:
    found = problems(tmp_path, "routes:" + MINIMAL_ROUTE + MINIMAL_ROUTE)
    assert len(found) == 1
    assert found[0].startswith("routes[1]: error: duplicate of routes[0]")


def test_forwarding_section_and_route_underscores(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "propylon: 1\nforwarding:\n  strip_client_headers: [X-Tenant, X-Real-IP]\n"
        "  allow_underscores: true\nroutes:\n"
        "  - path: /a\n    allow_underscores: false\n    downstream: {hosts: ['a:80']}\n",
    )
    assert cfg.forwarding.strip_client_headers == ("X-Tenant", "X-Real-IP")
    assert cfg.forwarding.allow_underscores is True
    assert cfg.routes[0].allow_underscores is False
    default = load(tmp_path, "propylon: 1\nroutes:" + MINIMAL_ROUTE)
    assert "X-Original-URL" in default.forwarding.strip_client_headers
    assert default.forwarding.allow_underscores is False
    assert default.routes[0].allow_underscores is None


def test_forwarding_mistakes_are_named(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "propylon: 1\nforwarding:\n  strip_client_headers: ['Bad Name', Host]\n"
        "  allow_underscore: true\nroutes:" + MINIMAL_ROUTE,
    )
    assert "forwarding.allow_underscore: error: unknown key; did you mean allow_underscores?" in (
        found
    )
    found = problems(
        tmp_path,
        "propylon: 1\nforwarding:\n  strip_client_headers: ['Bad Name', Host]\nroutes:"
        + MINIMAL_ROUTE,
    )
    assert found[0].startswith("forwarding.strip_client_headers[0]: error: not a valid header")
    assert found[1] == (
        "forwarding.strip_client_headers[1]: error: 'Host' cannot be stripped: "
        "the gateway reads or writes it itself"
    )
