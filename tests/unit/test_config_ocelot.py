"""The Ocelot reader: the second seed's Routes.json, Ocelot semantics and key paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from propylon.config.loader import load_config
from propylon.config.model import (
    AuthRequirement,
    ConfigError,
    ConfigFormat,
    DownstreamHost,
    GatewayConfig,
)

SECRET_ENV = {"PROPYLON_JWT_SECRET": "s" * 32}

SEED_ROUTES_JSON = """{
  "Routes": [
    {
      "UpstreamPathTemplate": "/api/v1/user/login", // From where we get a request
      "UpstreamHttpMethod": [ "POST" ], // Allowed methods
      "DownstreamPathTemplate": "/identity/login", // Where we redirecting
      "DownstreamScheme": "http",
      "DownstreamHostAndPorts": [
        {
          "Host": "identityapi",
          "Port": 8080
        }
      ]
    },
    {
      "UpstreamPathTemplate": "/api/v1/status",
      "UpstreamHttpMethod": [ "GET" ],
      "DownstreamPathTemplate": "/status",
      "DownstreamScheme": "http",
      "DownstreamHostAndPorts": [
        {
          "Host": "statusapi",
          "Port": 8080
        }
      ],
      "AuthenticationOptions": {
        "AuthenticationProviderKey": "Bearer",
        "AllowedScopes": [ "product.delete" ]
      },
      "RouteClaimsRequirement": {
        "Role": "admin"
      }
    }
  ],
  "GlobalConfiguration": {
    "BaseUrl": "http://localhost:9000"
  }
}"""


def write(tmp_path: Path, data: Any, name: str = "ocelot.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def load(tmp_path: Path, data: Any, env: dict[str, str] | None = None) -> GatewayConfig:
    return load_config(write(tmp_path, data), env=SECRET_ENV if env is None else env)


def problems(tmp_path: Path, data: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, data, env)
    return [f"{p.path}: {p.severity}: {p.message}" for p in caught.value.problems]


def warnings(config: GatewayConfig) -> list[str]:
    return [f"{p.path}: {p.message}" for p in config.warnings]


def route(prefix: str = "/a", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "UpstreamPathTemplate": prefix + "/{id}",
        "UpstreamHttpMethod": ["Get"],
        "DownstreamPathTemplate": "/b/{id}",
        "DownstreamScheme": "http",
        "DownstreamHostAndPorts": [{"Host": "svc", "Port": 80}],
    }
    base.update(overrides)
    return base


def test_second_seed_routes_json_loads_unchanged(tmp_path: Path) -> None:
    config = load(tmp_path, SEED_ROUTES_JSON)
    assert config.format is ConfigFormat.OCELOT
    assert config.base_url == "http://localhost:9000"
    assert config.warnings == ()
    login, status = config.routes
    assert login.source == "Routes[0]"
    assert login.methods == frozenset({"POST"})
    assert login.upstream_path == "/api/v1/user/login"
    assert login.downstream_path == "/identity/login"
    assert login.downstream_hosts == (DownstreamHost("identityapi", 8080),)
    assert login.auth is None
    assert login.priority == 1
    assert login.timeout == 30.0  # propylon's default (Ocelot's own is 90 s), as the issue asks
    assert not login.case_sensitive
    assert status.auth == AuthRequirement(
        providers=("Bearer",),
        allowed_scopes=("product.delete",),
        required_claims=(("Role", "admin"),),
    )
    assert config.providers["Bearer"].algorithms == ("HS256",)


def test_property_names_are_case_insensitive_and_spelling_is_kept_in_messages(
    tmp_path: Path,
) -> None:
    config = load(
        tmp_path,
        {
            "routes": [
                {
                    "upstreampathtemplate": "/x",
                    "UPSTREAMHTTPMETHOD": ["get", "PoSt"],
                    "downstreamPathTemplate": "/y",
                    "downstreamhostandports": [{"host": "h", "PORT": "81"}],
                    "routeIsCaseSensitive": True,
                }
            ]
        },
    )
    spec = config.routes[0]
    assert spec.methods == frozenset({"GET", "POST"})
    assert spec.downstream_hosts == (DownstreamHost("h", 81),)
    assert spec.case_sensitive
    lower = {k[0].lower() + k[1:]: v for k, v in route().items()}
    lower["downstreamHostAndPorts"] = [{"host": "h", "port": 0}]
    assert problems(tmp_path, {"routes": [lower]}) == [
        "routes[0].downstreamHostAndPorts[0].port: error: port must be 1-65535, got 0"
    ]


def test_old_reroutes_names(tmp_path: Path) -> None:
    config = load(tmp_path, {"ReRoutes": [route(ReRouteIsCaseSensitive=True)]})
    assert config.routes[0].source == "ReRoutes[0]"
    assert config.routes[0].case_sensitive
    assert problems(tmp_path, {"ReRoutes": [route(DownstreamScheme="ftp")]}) == [
        "ReRoutes[0].DownstreamScheme: error: scheme must be http or https, got 'ftp'"
    ]
    assert problems(tmp_path, {"Routes": [route()], "ReRoutes": [route()]}) == [
        "ReRoutes: error: 'Routes' is given too (Ocelot keys are case-insensitive, and old and "
        "new names mean the same key)"
    ]


def test_empty_method_list_means_every_method(tmp_path: Path) -> None:
    assert load(tmp_path, {"Routes": [route(UpstreamHttpMethod=[])]}).routes[0].methods == (
        frozenset()
    )
    del_methods = route()
    del del_methods["UpstreamHttpMethod"]
    assert load(tmp_path, {"Routes": [del_methods]}).routes[0].methods == frozenset()


def test_priority_defaults_and_the_hard_wired_catch_all(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "Routes": [
                route(UpstreamPathTemplate="/{everything}", DownstreamPathTemplate="/{everything}"),
                route("/b"),
                route(UpstreamPathTemplate="/goods/{x}", DownstreamPathTemplate="/{x}", Priority=5),
                route(
                    UpstreamPathTemplate="/{url}",
                    DownstreamPathTemplate="/{url}",
                    Priority=3,
                    UpstreamHttpMethod=["Post"],
                ),
            ]
        },
    )
    assert [r.priority for r in config.routes] == [0, 1, 5, 0]
    assert warnings(config) == [
        "Routes[3].Priority: ignored: a catch-all '/{url}' always has priority 0, as in Ocelot"
    ]


def test_scheme_and_timeout_fall_back_to_global_configuration(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "Routes": [
                {k: v for k, v in route().items() if k != "DownstreamScheme"},
                route("/b", Timeout=3),
                route("/c", Timeout=3, QoSOptions={"TimeoutValue": 1500}),
                route("/d", Timeout=0),
            ],
            "GlobalConfiguration": {"DownstreamScheme": "https", "Timeout": 60},
        },
    )
    assert config.routes[0].downstream_scheme == "https"
    assert config.routes[1].downstream_scheme == "http"
    assert [r.timeout for r in config.routes] == [60.0, 3.0, 1.5, 60.0]


def test_negative_timeouts_are_errors(tmp_path: Path) -> None:
    assert problems(
        tmp_path, {"Routes": [route(Timeout=-1)], "GlobalConfiguration": {"Timeout": -5}}
    ) == [
        "GlobalConfiguration.Timeout: error: must be a positive number of seconds "
        "(0 = default), got -5",
        "Routes[0].Timeout: error: must be a positive number of seconds (0 = default), got -1",
    ]


def test_each_ocelot_balancer_type_is_read_and_hosts_are_kept(tmp_path: Path) -> None:
    hosts = [{"Host": "a", "Port": 1}, {"Host": "b", "Port": 2}]
    config = load(
        tmp_path,
        {
            "Routes": [
                route(DownstreamHostAndPorts=hosts),
                route(
                    "/b", DownstreamHostAndPorts=hosts, LoadBalancerOptions={"Type": "RoundRobin"}
                ),
                route(
                    "/c",
                    DownstreamHostAndPorts=hosts,
                    LoadBalancerOptions={"Type": "NoLoadBalancer"},
                ),
                route(
                    "/d",
                    DownstreamHostAndPorts=hosts,
                    LoadBalancerOptions={"Type": "LeastConnection"},
                ),
            ]
        },
    )
    assert [len(r.downstream_hosts) for r in config.routes] == [2, 2, 2, 2]
    assert [r.balancer.kind for r in config.routes] == [
        "round_robin",
        "round_robin",
        "first",
        "least_connection",
    ]
    assert warnings(config) == []


def test_unimplemented_keys_warn_by_name_unless_they_ask_for_nothing(tmp_path: Path) -> None:
    inert = route(
        AddQueriesToRequest={},
        DelegatingHandlers=[],
        ServiceName="",
        FileCacheOptions={"TtlSeconds": 0, "Region": "europe-central"},
        RateLimitOptions={
            "ClientWhitelist": [],
            "EnableRateLimiting": False,
            "Period": "",
            "PeriodTimespan": 0,
            "Limit": 0,
        },
        QoSOptions={"ExceptionsAllowedBeforeBreaking": 0, "DurationOfBreak": 0, "TimeoutValue": 0},
        DangerousAcceptAnyServerCertificateValidator=False,
    )
    assert load(tmp_path, {"Routes": [inert]}).warnings == ()
    active = route(
        AddQueriesToRequest={"a": "Claims[sub] > value"},
        FileCacheOptions={"TtlSeconds": 15},
        QoSOptions={"ExceptionsAllowedBeforeBreaking": 3},
        DangerousAcceptAnyServerCertificateValidator=True,
        SomethingElse=1,
    )
    config = load(
        tmp_path,
        {
            "Routes": [active],
            "Aggregates": [{"RouteKeys": ["a"]}],
            "GlobalConfiguration": {"ServiceDiscoveryProvider": {"Host": "consul"}},
        },
    )
    assert warnings(config) == [
        "Routes[0].AddQueriesToRequest: not implemented by propylon yet; ignored",
        "Routes[0].FileCacheOptions: not implemented by propylon yet; ignored",
        "Routes[0].DangerousAcceptAnyServerCertificateValidator: not implemented by propylon "
        "yet; ignored: upstream TLS certificates are always verified",
        "Routes[0].SomethingElse: unknown key; ignored",
        "Aggregates: not implemented by propylon yet; ignored",
        "GlobalConfiguration.ServiceDiscoveryProvider: not implemented by propylon yet; ignored",
    ]


def test_request_id_key_is_global_and_per_route_differences_warn(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {"Routes": [route(RequestIdKey="OcRequestId"), route("/b", RequestIdKey="OcRequestId")]},
    )
    assert config.request_id_header == "OcRequestId"
    assert config.warnings == ()
    config = load(
        tmp_path,
        {
            "Routes": [route(RequestIdKey="Other"), route("/b")],
            "GlobalConfiguration": {"RequestIdKey": "X-Corr"},
        },
    )
    assert config.request_id_header == "X-Corr"
    assert warnings(config) == [
        "Routes[0].RequestIdKey: propylon uses one request id header for every route; "
        "'X-Corr' (from GlobalConfiguration.RequestIdKey) is used here too"
    ]
    assert load(tmp_path, {"Routes": [route()]}).request_id_header == "X-Request-Id"


def test_every_problem_of_the_file_is_reported_with_its_key_path(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "Routes": [
                route(),
                {"UpstreamHttpMethod": ["GET"], "DownstreamPathTemplate": "/b"},
                route("/c", UpstreamHttpMethod=["FETCH"], DownstreamHostAndPorts=[]),
                route(
                    "/d",
                    DownstreamHostAndPorts=[
                        {"Host": "svc", "Port": 80},
                        {"Host": "http://x", "Port": "eighty"},
                    ],
                ),
                route("/e", DownstreamPathTemplate="/b/{other}"),
                route("/f", UpstreamHttpMethod="GET", Priority="high"),
                route(UpstreamPathTemplate="a/{id}"),
            ]
        },
    )
    assert found == [
        "Routes[1].UpstreamPathTemplate: error: required key is missing",
        "Routes[2].UpstreamHttpMethod[0]: error: unknown HTTP method 'FETCH'; use one of "
        "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
        "Routes[2].DownstreamHostAndPorts: error: at least one {Host, Port} is required",
        'Routes[3].DownstreamHostAndPorts[1].Port: error: must be an integer, got "eighty"',
        "Routes[4].DownstreamPathTemplate: error: placeholder {other} is not captured by the "
        "upstream side (UpstreamPathTemplate '/e/{id}')",
        'Routes[5].UpstreamHttpMethod: error: must be a list, got "GET"',
        'Routes[5].Priority: error: must be an integer, got "high"',
        "Routes[6].UpstreamPathTemplate: error: must start with '/', got 'a/{id}'",
    ]


def test_bad_host_and_trace_method(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        {
            "Routes": [
                route(
                    UpstreamHttpMethod=["Trace"],
                    DownstreamHostAndPorts=[{"Host": "http://x", "Port": 1}],
                )
            ]
        },
    ) == [
        "Routes[0].UpstreamHttpMethod[0]: error: method TRACE is not proxied by propylon",
        "Routes[0].DownstreamHostAndPorts[0].Host: error: host must be a bare host name, "
        "not a URL or path: 'http://x'",
    ]


def test_scopes_or_claims_without_a_provider_are_errors(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        {
            "Routes": [
                route(
                    AuthenticationOptions={"AllowedScopes": ["a"]},
                    RouteClaimsRequirement={"Role": "x"},
                )
            ]
        },
    ) == [
        "Routes[0].AuthenticationOptions.AllowedScopes: error: scopes need authentication: set "
        "AuthenticationOptions.AuthenticationProviderKey",
        "Routes[0].RouteClaimsRequirement: error: claims need authentication: set "
        "AuthenticationOptions.AuthenticationProviderKey",
    ]


def test_provider_keys_list_and_undefined_providers(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "Routes": [
                route(AuthenticationOptions={"AuthenticationProviderKeys": ["Bearer", "Bearer"]})
            ]
        },
    )
    assert config.routes[0].auth == AuthRequirement(providers=("Bearer",))
    found = problems(
        tmp_path,
        {"Routes": [route(AuthenticationOptions={"AuthenticationProviderKey": "TestKey"})]},
    )
    assert found == [
        "Routes[0].AuthenticationOptions.AuthenticationProviderKey: error: auth provider "
        "'TestKey' is not defined: ocelot files can only use 'Bearer' (from the environment: "
        "set PROPYLON_JWT_SECRET (HS256 secret), PROPYLON_JWT_PUBLIC_KEY (PEM file) or "
        "PROPYLON_JWKS_URL, plus optionally PROPYLON_JWT_ALGORITHMS); define 'TestKey' in a "
        "native config instead"
    ]


def test_bearer_without_environment_names_the_route_and_the_variables(tmp_path: Path) -> None:
    assert problems(tmp_path, SEED_ROUTES_JSON, env={}) == [
        "Routes[1].AuthenticationOptions.AuthenticationProviderKey: error: needs the 'Bearer' "
        "auth provider, which is not defined: set PROPYLON_JWT_SECRET (HS256 secret), "
        "PROPYLON_JWT_PUBLIC_KEY (PEM file) or PROPYLON_JWKS_URL, plus optionally "
        "PROPYLON_JWT_ALGORITHMS"
    ]


def test_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, '"just text"')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, fmt=ConfigFormat.OCELOT)
    assert [p.message for p in caught.value.problems] == [
        "an Ocelot file is a JSON object, got a string"
    ]


def test_delegating_handlers_warn_and_point_to_plugins(tmp_path: Path) -> None:
    path = tmp_path / "ocelot.json"
    route = {
        "UpstreamPathTemplate": "/a",
        "DownstreamPathTemplate": "/a",
        "DownstreamHostAndPorts": [{"Host": "h", "Port": 1}],
        "DelegatingHandlers": ["MyCompany.Handlers.ApiKey"],
    }
    path.write_text(json.dumps({"Routes": [route]}))
    warnings = [str(w) for w in load_config(str(path), env={}).warnings]
    assert any(
        "Routes[0].DelegatingHandlers" in w and "Python plugin" in w and "docs/plugins.md" in w
        for w in warnings
    ), warnings
