"""A misspelt key that protects or limits a route is an error naming the key it resembles;
every other unknown key is a warning saying which key it resembles (issue #11, item 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from propylon.config.loader import load_config
from propylon.config.model import ConfigError, GatewayConfig
from propylon.config.near_miss import closest, distance

ENV = {"PROPYLON_JWT_SECRET": "s" * 32}
AUTH = {"AuthenticationProviderKey": "Bearer"}


def _route(**keys: Any) -> dict[str, Any]:
    return {
        "UpstreamPathTemplate": "/a",
        "DownstreamPathTemplate": "/a",
        "DownstreamHostAndPorts": [{"Host": "svc", "Port": 80}],
        **keys,
    }


def _load(tmp_path: Path, data: Any, name: str = "ocelot.json") -> GatewayConfig:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else data)
    return load_config(str(path), env=ENV)


def _errors(tmp_path: Path, data: Any, name: str = "ocelot.json") -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, data, name)
    return [(p.path, p.message) for p in caught.value.problems if p.severity == "error"]


def test_distance_counts_edits_and_swaps() -> None:
    assert distance("kitten", "sitting") == 3
    assert distance("priorty", "priority") == 1
    assert distance("kye", "key") == 1  # a swap of neighbours is one edit
    assert closest("authentication_options", ["AuthenticationOptions"]) == "AuthenticationOptions"
    assert closest("Authentication", ["AuthenticationOptions"]) is None


@pytest.mark.parametrize(
    ("route", "path", "resembles"),
    [
        (
            _route(AuthenticationOption=AUTH),
            "Routes[0].AuthenticationOption",
            "AuthenticationOptions",
        ),
        (
            _route(authenticationoption=AUTH),
            "Routes[0].authenticationoption",
            "AuthenticationOptions",
        ),
        (
            _route(Authentication_Options=AUTH),
            "Routes[0].Authentication_Options",
            "AuthenticationOptions",
        ),
        (
            _route(AuthenticationOptions={"AuthenticationProviderKy": "Bearer"}),
            "Routes[0].AuthenticationOptions.AuthenticationProviderKy",
            "AuthenticationProviderKey",
        ),
        (
            _route(AuthenticationOptions={**AUTH, "AllowedScope": ["api"]}),
            "Routes[0].AuthenticationOptions.AllowedScope",
            "AllowedScopes",
        ),
        (
            _route(AuthenticationOptions=AUTH, RouteClaimRequirement={"role": "admin"}),
            "Routes[0].RouteClaimRequirement",
            "RouteClaimsRequirement",
        ),
        (
            _route(AuthenticationOptions=AUTH, RouteClaimsRequirements={"role": "admin"}),
            "Routes[0].RouteClaimsRequirements",
            "RouteClaimsRequirement",
        ),
        (
            _route(SecurityOption={"IPAllowedList": ["10.0.0.1"]}),
            "Routes[0].SecurityOption",
            "SecurityOptions",
        ),
        (
            _route(SecurityOptions={"IPAllowList": ["10.0.0.1"]}),
            "Routes[0].SecurityOptions.IPAllowList",
            "IPAllowedList",
        ),
        (
            _route(SecurityOptions={"IPBlockList": ["10.0.0.1"]}),
            "Routes[0].SecurityOptions.IPBlockList",
            "IPBlockedList",
        ),
        (_route(RateLimitOption={"Limit": 5}), "Routes[0].RateLimitOption", "RateLimitOptions"),
        (
            _route(
                RateLimitOptions={
                    "EnableRateLimiting": True,
                    "Limit": 1,
                    "Period": "1s",
                    "ClientWhiteLists": ["a"],
                }
            ),
            "Routes[0].RateLimitOptions.ClientWhiteLists",
            "ClientWhitelist",
        ),
    ],
)
def test_a_near_miss_of_a_protective_key_is_an_error(
    tmp_path: Path, route: dict[str, Any], path: str, resembles: str
) -> None:
    errors = _errors(tmp_path, {"Routes": [route]})
    assert [p for p, _ in errors] == [path]
    message = errors[0][1]
    assert f"near miss of {resembles}" in message and f"did you mean {resembles}?" in message


@pytest.mark.parametrize(
    ("route", "path", "belongs"),
    [
        (_route(AllowedScopes=["api"]), "Routes[0].AllowedScopes", "AuthenticationOptions"),
        (
            _route(authenticationProviderKey="Bearer"),
            "Routes[0].authenticationProviderKey",
            "AuthenticationOptions",
        ),
        (_route(IPAllowedList=["10.0.0.1"]), "Routes[0].IPAllowedList", "SecurityOptions"),
    ],
)
def test_a_protective_key_in_the_wrong_object_is_an_error(
    tmp_path: Path, route: dict[str, Any], path: str, belongs: str
) -> None:
    errors = _errors(tmp_path, {"Routes": [route]})
    assert [p for p, _ in errors] == [path]
    assert f"belongs in {belongs}" in errors[0][1]


def test_a_global_near_miss_is_an_error_too(tmp_path: Path) -> None:
    data = {"Routes": [_route()], "GlobalConfiguration": {"RateLimitOption": {"Limit": 1}}}
    assert [p for p, _ in _errors(tmp_path, data)] == ["GlobalConfiguration.RateLimitOption"]


def test_other_unknown_keys_stay_warnings_and_say_what_they_resemble(tmp_path: Path) -> None:
    config = _load(tmp_path, {"Routes": [_route(Priorty=2, Timeouts=5, Colour="blue")]})
    assert [(w.path, w.message) for w in config.warnings] == [
        ("Routes[0].Priorty", "unknown key; ignored (did you mean Priority?)"),
        ("Routes[0].Timeouts", "unknown key; ignored (did you mean Timeout?)"),
        ("Routes[0].Colour", "unknown key; ignored"),
    ]


def test_a_disabled_rate_limiter_is_not_searched(tmp_path: Path) -> None:
    # Ocelot's "everything" template: nothing is asked, so nothing is worth stopping for.
    options = {"EnableRateLimiting": False, "ClientWhitelists": []}
    config = _load(tmp_path, {"Routes": [_route(RateLimitOptions=options)]})
    assert config.warnings == ()


def test_native_unknown_keys_say_what_they_resemble(tmp_path: Path) -> None:
    text = (
        "propylon: 1\n"
        "auth_providers: {Bearer: {secret_env: PROPYLON_JWT_SECRET}}\n"
        "rotues: []\n"
        "routes:\n"
        "  - path: /a\n"
        "    downstream: {hosts: ['svc:80']}\n"
        "    auht: {providers: [Bearer]}\n"
        "  - path: /b\n"
        "    downstream: {hosts: ['svc:80']}\n"
        "    auth: {providers: [Bearer], scope: [api]}\n"
    )
    assert _errors(tmp_path, text, "gateway.yaml") == [
        ("rotues", "unknown key; did you mean routes?"),
        ("routes[0].auht", "unknown key; did you mean auth?"),
        ("routes[1].auth.scope", "unknown key; did you mean scopes?"),
    ]


def test_seed_near_miss_of_auth_required_is_an_error(tmp_path: Path) -> None:
    text = (
        "- {method: get, path_regex: ^/a$, service_url: 'http://a', auth_required: false,"
        " auth_requried: true}\n"
        "- {method: get, path_regex: ^/b$, service_url: 'http://b', auth_required: false,"
        " methd: post}\n"
    )
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text, "routes.yaml")
    assert [(p.path, p.severity, p.message) for p in caught.value.problems] == [
        (
            "[0].auth_requried",
            "error",
            "unknown key, a near miss of auth_required; did you mean auth_required?",
        ),
        ("[1].methd", "warning", "unknown key; ignored (did you mean method?)"),
    ]
