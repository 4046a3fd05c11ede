"""Rate-limit config in both formats: Ocelot 25's merge of route and global options
(RateLimitOptionsCreatorTests ported), and every problem named with file and key path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from propylon.config.loader import load_config
from propylon.config.model import ConfigError, GatewayConfig, KeyPart, OcelotRateLimit


def route(**extra: Any) -> dict[str, Any]:
    return {
        "UpstreamPathTemplate": "/a",
        "DownstreamPathTemplate": "/a",
        "DownstreamHostAndPorts": [{"Host": "localhost", "Port": 9000}],
        **extra,
    }


def ocelot(
    tmp_path: Path,
    routes: list[dict[str, Any]],
    glob: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> GatewayConfig:
    data: dict[str, Any] = {"Routes": routes}
    if glob is not None:
        data["GlobalConfiguration"] = {"RateLimitOptions": glob}
    path = tmp_path / "ocelot.json"
    path.write_text(json.dumps(data))
    return load_config(str(path), env=env or {})


def problems(tmp_path: Path, *args: Any, name: str = "ocelot.json") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        ocelot(tmp_path, *args)
    return [f"{p.path}: {p.message}" for p in caught.value.problems if p.severity == "error"]


def test_no_options_anywhere_is_no_limit(tmp_path: Path) -> None:
    assert ocelot(tmp_path, [route()]).routes[0].ocelot_rate_limit is None


def test_an_empty_global_object_enables_limiting_everywhere(tmp_path: Path) -> None:
    # Create_GlobalRouteKeysCollectionIsNull_IsGlobalDefaultsToTrue
    spec = ocelot(tmp_path, [route()], {}).routes[0].ocelot_rate_limit
    assert spec == OcelotRateLimit(limit=0, period="1s", period_seconds=1.0)


@pytest.mark.parametrize("contains", [True, False])
def test_route_keys_choose_the_routes_of_the_global_group(tmp_path: Path, contains: bool) -> None:
    # Create_GlobalRouteKeys_ContainsRouteKey
    cfg = ocelot(
        tmp_path, [route(Key="R1" if contains else "?")], {"RouteKeys": ["R1"], "Limit": 1}
    )
    assert (cfg.routes[0].ocelot_rate_limit is not None) is contains


@pytest.mark.parametrize(
    ("mine", "theirs", "enabled"),
    [(None, None, True), (False, None, False), (None, False, False), (False, False, False)],
)
def test_enable_rate_limiting_false_on_either_side_disables(
    tmp_path: Path, mine: bool | None, theirs: bool | None, enabled: bool
) -> None:
    # Create_DisabledRateLimiting
    own: dict[str, Any] = {"Limit": 1, "Period": "1s"}
    if mine is not None:
        own["EnableRateLimiting"] = mine
    glob: dict[str, Any] = {} if theirs is None else {"EnableRateLimiting": theirs}
    spec = ocelot(tmp_path, [route(RateLimitOptions=own)], glob).routes[0].ocelot_rate_limit
    assert (spec is not None) is enabled


@pytest.mark.parametrize(
    ("has_rule", "has_global", "in_group", "header"),
    [
        (True, False, False, "rule"),
        (False, True, True, "globalRule"),
        (True, True, False, "rule"),
        (True, True, True, "rule"),
    ],
)
def test_whose_client_id_header(
    tmp_path: Path, has_rule: bool, has_global: bool, in_group: bool, header: str
) -> None:
    # Create_ByHeaderRules
    own = {"ClientIdHeader": "rule", "Limit": 1, "Period": "1s"} if has_rule else None
    glob = {"RouteKeys": ["R1" if in_group else "?"], "ClientIdHeader": "globalRule", "Limit": 1}
    extra = {"RateLimitOptions": own} if own else {}
    cfg = ocelot(tmp_path, [route(Key="R1", **extra)], glob if has_global else None)
    spec = cfg.routes[0].ocelot_rate_limit
    assert spec is not None and spec.client_id_header == header


def test_a_route_takes_every_missing_value_from_global_and_old_names_win(tmp_path: Path) -> None:
    # MergeHeaderRules_FromGlobal: "12/9s/w10s"
    glob = {
        "ClientIdHeader": "X-111",
        "ClientWhitelist": ["222"],
        "EnableHeaders": False,
        "EnableRateLimiting": True,
        "HttpStatusCode": 300,
        "StatusCode": 400,
        "QuotaExceededMessage": "55",
        "QuotaMessage": "66",
        "RateLimitCounterPrefix": "77",
        "KeyPrefix": "88",
        "Period": "9s",
        "PeriodTimespan": 10.0,
        "Wait": "11s",
        "Limit": 12,
    }
    cfg = ocelot(tmp_path, [route(RateLimitOptions={"Period": "9s"})], glob)
    spec = cfg.routes[0].ocelot_rate_limit
    assert spec is not None
    assert (spec.client_id_header, spec.client_whitelist, spec.enable_headers) == (
        "X-111",
        frozenset({"222"}),
        False,
    )
    assert (spec.status, spec.quota_message, spec.key_prefix) == (300, "55", "77")
    assert spec.rule == "12/9s/w10s" and spec.wait_seconds == 10.0


def test_a_route_limit_of_zero_and_a_missing_period_stop_the_gateway(tmp_path: Path) -> None:
    errors = problems(tmp_path, [route(RateLimitOptions={"Limit": 0})])
    assert errors == [
        "Routes[0].RateLimitOptions.Limit: must be greater than 0, got 0 (Ocelot refuses to "
        "start with it)",
        "Routes[0].RateLimitOptions.Period: required when a route has RateLimitOptions (Ocelot "
        'refuses to start without it): e.g. "1s", "1m", "1h"',
    ]


@pytest.mark.parametrize(
    ("options", "path", "words"),
    [
        ({"Period": "10"}, "Routes[0].RateLimitOptions.Period", "needs a unit"),
        ({"Period": "1sec"}, "Routes[0].RateLimitOptions.Period", "unknown unit 'sec'"),
        ({"Period": "1s", "Wait": "1x"}, "Routes[0].RateLimitOptions.Wait", "unknown unit 'x'"),
        (
            {"Period": "1s", "PeriodTimespan": -1},
            "Routes[0].RateLimitOptions.PeriodTimespan",
            "negative",
        ),
        (
            {"Period": "1s", "StatusCode": 999},
            "Routes[0].RateLimitOptions.StatusCode",
            "HTTP status",
        ),
        (
            {"Period": "1s", "QuotaMessage": "{2}"},
            "Routes[0].RateLimitOptions.QuotaMessage",
            "only {0}",
        ),
        (
            {"Period": "1s", "QuotaMessage": "{0"},
            "Routes[0].RateLimitOptions.QuotaMessage",
            "never closed",
        ),
        (
            {"Period": "1s", "ClientIdHeader": "Authorization"},
            "Routes[0].RateLimitOptions.ClientIdHeader",
            "never reaches",
        ),
        (
            {"Period": "1s", "ClientIdHeader": "Client_Id"},
            "Routes[0].RateLimitOptions.ClientIdHeader",
            "'_'",
        ),
        (
            {"Period": "1s", "ClientIdHeader": "a b"},
            "Routes[0].RateLimitOptions.ClientIdHeader",
            "",
        ),
    ],
)
def test_bad_values_are_errors_at_their_key_path(
    tmp_path: Path, options: dict[str, Any], path: str, words: str
) -> None:
    errors = problems(tmp_path, [route(RateLimitOptions={"Limit": 1, **options})])
    assert len(errors) == 1 and errors[0].startswith(path + ": ") and words in errors[0], errors


def test_a_route_without_any_limit_is_warned_about(tmp_path: Path) -> None:
    cfg = ocelot(tmp_path, [route(RateLimitOptions={"Period": "1s"})])
    assert [(w.path, "EVERY request" in w.message) for w in cfg.warnings] == [
        ("Routes[0].RateLimitOptions.Limit", True)
    ]


def test_redis_from_the_environment_for_ocelot_files(tmp_path: Path) -> None:
    env = {"PROPYLON_REDIS_URL": "redis://cache:6379/2", "PROPYLON_REDIS_ON_FAILURE": "closed"}
    cfg = ocelot(tmp_path, [route()], env=env)
    assert (cfg.state.chosen(1), cfg.state.redis_url, cfg.state.on_failure) == (
        "redis",
        "redis://cache:6379/2",
        "closed",
    )
    with pytest.raises(ConfigError) as caught:
        ocelot(tmp_path, [route()], env={"PROPYLON_REDIS_URL": "http://cache"})
    assert str(caught.value.problems[0]) == (
        "<environment>: error: PROPYLON_REDIS_URL: must be a redis://, rediss:// or unix:// URL"
    )


def native(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "propylon.yaml"
    path.write_text("propylon: 1\n" + text)
    return load_config(str(path), env={})


ROUTE = "routes:\n- path: /a\n  downstream: {hosts: ['h:80']}\n"


def test_native_limits_defaults_and_opting_out(tmp_path: Path) -> None:
    cfg = native(
        tmp_path,
        "rate_limits: [{limit: 100, per: 1m, key: [ip, route]}]\n"
        + ROUTE
        + "- path: /b\n  downstream: {hosts: ['h:80']}\n  rate_limits: []\n"
        "- path: /c\n  downstream: {hosts: ['h:80']}\n"
        "  rate_limits: [{name: burst, limit: 10, per: 1s, key: 'header:X-Api-Key'}]\n",
    )
    a, b, c = cfg.routes
    assert [(p.name, p.limit, p.period, p.key, p.per_route) for p in a.rate_limits] == [
        ("100-per-1m", 100, 60.0, (KeyPart("ip"), KeyPart("route")), True)
    ]
    assert b.rate_limits == ()
    assert [(p.name, p.key) for p in c.rate_limits] == [
        ("burst", (KeyPart("header", "x-api-key"),))
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rate_limits: [{limit: 0, per: 1s}]\n", "rate_limits[0].limit: must be at least 1, got 0"),
        (
            "rate_limits: [{limit: 5, per: -1}]\n",
            "rate_limits[0].per: must not be negative, got -1",
        ),
        (
            "rate_limits: [{limit: 5, per: 1w}]\n",
            "rate_limits[0].per: unknown unit 'w' in '1w': use ms, s, m, h or d",
        ),
        (
            "rate_limits: [{limit: 5, per: 1s, key: [colour]}]\n",
            "rate_limits[0].key[0]: unknown key part 'colour': use sub, claim:<name>, ip, "
            "header:<Name> or route",
        ),
        (
            "rate_limits: [{limit: 5, per: 1s, pre: 1s}]\n",
            "rate_limits[0].pre: unknown key; did you mean per?",
        ),
        (
            "rate_limits: [{limit: 5, per: 1s, key: sub}]\n",
            "rate_limits: rate_limits[0] is keyed by the caller's identity, but routes[0] (* /a) "
            "has no auth: give that route rate_limits of its own ([] for none)",
        ),
        (
            "state: {backend: redis}\n",
            "state.backend: redis needs state.redis_url (or PROPYLON_REDIS_URL)",
        ),
        ("state: {on_failure: maybe}\n", 'state.on_failure: must be open or closed, got "maybe"'),
        ("state: {max_key: 5}\n", "state.max_key: unknown key; did you mean max_keys?"),
    ],
)
def test_native_problems_name_the_key_path(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        native(tmp_path, text + ROUTE)
    found = [f"{p.path}: {p.message}" for p in caught.value.problems if p.severity == "error"]
    assert found == [expected]
