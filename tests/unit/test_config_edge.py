"""IP rules and CORS in both formats: what loads, what each route ends up with, and the
file, key path and reason of every mistake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from propylon.config.loader import load_config
from propylon.config.model import ConfigError, CorsPolicy, GatewayConfig, IpRules

ENV = {"PROPYLON_JWT_SECRET": "s" * 32}


def ocelot_route(**keys: Any) -> dict[str, Any]:
    return {
        "UpstreamPathTemplate": "/a",
        "DownstreamPathTemplate": "/a",
        "DownstreamHostAndPorts": [{"Host": "svc", "Port": 80}],
        **keys,
    }


def load_ocelot(tmp_path: Path, routes: list[dict[str, Any]], **glob: Any) -> GatewayConfig:
    path = tmp_path / "ocelot.json"
    path.write_text(json.dumps({"Routes": routes, "GlobalConfiguration": glob}))
    return load_config(str(path), env=ENV)


def native_route(**keys: Any) -> dict[str, Any]:
    return {"path": "/a", "downstream": {"hosts": ["svc:80"]}, **keys}


def load_native(tmp_path: Path, routes: list[dict[str, Any]], **top: Any) -> GatewayConfig:
    path = tmp_path / "propylon.yaml"
    data = {
        "propylon": 1,
        "auth_providers": {"Bearer": {"secret": "s" * 32}},
        "routes": routes,
        **top,
    }
    path.write_text(yaml.safe_dump(data))
    return load_config(str(path), env={})


def errors(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    """``path: message`` of each error (the file is the one loaded: checked once here)."""
    found = [p for p in exc.value.problems if p.severity == "error"]
    assert all(p.file.endswith((".json", ".yaml")) for p in found)
    return [f"{p.path}: {p.message}" for p in found]


# -- Ocelot SecurityOptions --------------------------------------------------------------


def test_ocelot_security_options_route_replaces_global(tmp_path: Path) -> None:
    cfg = load_ocelot(
        tmp_path,
        [
            ocelot_route(SecurityOptions={"IPAllowedList": ["192.168.1.55"]}),
            ocelot_route(UpstreamPathTemplate="/b", DownstreamPathTemplate="/b"),
            ocelot_route(
                UpstreamPathTemplate="/c",
                DownstreamPathTemplate="/c",
                SecurityOptions={"ExcludeAllowedFromBlocked": False},
            ),
        ],
        SecurityOptions={
            "IPAllowedList": ["192.168.1.30-50"],
            "IPBlockedList": ["192.168.1.1-100"],
            "ExcludeAllowedFromBlocked": True,
        },
    )
    own, inherited, empty = (r.ip_rules for r in cfg.routes)
    assert own == IpRules(("192.168.1.55",), (), False)
    expected = IpRules(("192.168.1.30-50",), ("192.168.1.1-100",), True)
    assert inherited == expected and empty == expected
    assert not [w for w in cfg.warnings if "SecurityOptions" in w.path]


def test_ocelot_security_options_keys_are_case_insensitive(tmp_path: Path) -> None:
    cfg = load_ocelot(
        tmp_path,
        [
            ocelot_route(
                securityOptions={
                    "ipBlockedList": ["10.0.0.0/8"],
                    "excludeallowedfromblocked": "true",
                }
            )
        ],
    )
    assert cfg.routes[0].ip_rules == IpRules((), ("10.0.0.0/8",), True)


def test_ocelot_bad_entries_are_errors_with_their_key_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_ocelot(
            tmp_path,
            [ocelot_route(SecurityOptions={"IPAllowedList": ["10.0.0.1", "10.0.0.300"]})],
            SecurityOptions={"IPBlockedList": ["10.0.0.9-10.0.0.1"]},
        )
    found = errors(info)
    assert any(
        e.startswith("Routes[0].SecurityOptions.IPAllowedList[1]: ")
        and "'10.0.0.300' is not an IP address" in e
        for e in found
    ), found
    assert any(
        e.startswith("GlobalConfiguration.SecurityOptions.IPBlockedList[0]: ")
        and "ends before it starts" in e
        for e in found
    ), found


def test_ocelot_host_bits_are_read_as_ocelot_reads_them_with_a_warning(tmp_path: Path) -> None:
    cfg = load_ocelot(
        tmp_path, [ocelot_route(SecurityOptions={"IPAllowedList": ["192.168.1.5/24"]})]
    )
    warning = next(w for w in cfg.warnings if w.path.endswith("IPAllowedList[0]"))
    assert "192.168.1.0/24" in warning.message
    assert cfg.routes[0].ip_rules == IpRules(("192.168.1.5/24",))


def test_ocelot_misspelt_ip_list_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_ocelot(tmp_path, [ocelot_route(SecurityOptions={"IPAllowList": ["10.0.0.1"]})])
    assert any("Routes[0].SecurityOptions.IPAllowList" in e for e in errors(info))


def test_ocelot_routes_with_auth_let_options_through(tmp_path: Path) -> None:
    cfg = load_ocelot(
        tmp_path,
        [
            ocelot_route(AuthenticationOptions={"AuthenticationProviderKey": "Bearer"}),
            ocelot_route(UpstreamPathTemplate="/b", DownstreamPathTemplate="/b"),
        ],
    )
    assert cfg.routes[0].anonymous_options is True
    assert cfg.routes[1].anonymous_options is False  # public anyway


# -- native ip_rules ------------------------------------------------------------------------


def test_native_ip_rules_route_replaces_top_level(tmp_path: Path) -> None:
    cfg = load_native(
        tmp_path,
        [native_route(ip_rules={"block": ["2001:db8::/32"]}), native_route(path="/b")],
        ip_rules={"allow": ["10.0.0.0/8", "192.168.1.10-20"], "exclude_allowed_from_blocked": True},
    )
    assert cfg.routes[0].ip_rules == IpRules((), ("2001:db8::/32",), False)
    assert cfg.routes[1].ip_rules == IpRules(("10.0.0.0/8", "192.168.1.10-20"), (), True)


@pytest.mark.parametrize(
    ("rules", "path", "reason"),
    [
        ({"allow": ["10.0.0.1/8"]}, "routes[0].ip_rules.allow[0]", "did you mean 10.0.0.0/8?"),
        ({"block": ["x"]}, "routes[0].ip_rules.block[0]", "'x' is not an IP address"),
        ({"allow": "10.0.0.1", "deny": []}, "routes[0].ip_rules.deny", "unknown key"),
        ({"block": ["10.0.0.1-300"]}, "routes[0].ip_rules.block[0]", "octet"),
    ],
)
def test_native_ip_rule_mistakes(
    tmp_path: Path, rules: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_native(tmp_path, [native_route(ip_rules=rules)])
    assert any(e.startswith(f"{path}: ") and reason in e for e in errors(info)), errors(info)


def test_trusted_proxies_and_stats_read_the_same_forms(tmp_path: Path) -> None:
    cfg = load_native(
        tmp_path,
        [native_route()],
        trusted_proxies=["10.0.0.1-10.0.0.3", "192.168.0.0/255.255.0.0"],
        stats={"allow_cidrs": ["127.0.0.1", "::1"]},
    )
    assert cfg.trusted_proxies == ("10.0.0.1-10.0.0.3", "192.168.0.0/16")
    with pytest.raises(ConfigError) as info:
        load_native(tmp_path, [native_route()], trusted_proxies=["10.0.0.0/40"])
    assert any("trusted_proxies[0]" in e and "0-32" in e for e in errors(info))


# -- CORS -----------------------------------------------------------------------------------


def test_native_cors_defaults_and_route_override(tmp_path: Path) -> None:
    cfg = load_native(
        tmp_path,
        [
            native_route(methods=["GET", "POST"]),
            native_route(path="/b", cors={"origins": ["https://*.example.com"], "max_age": 60}),
            native_route(path="/c", cors=False),
            native_route(path="/d", methods=["GET", "OPTIONS"]),
        ],
        cors={
            "origins": ["https://App.Example.com:443", "http://localhost:*"],
            "credentials": True,
        },
    )
    a, b, c, d = cfg.routes
    assert a.methods == {"GET", "POST", "OPTIONS"}  # preflights must reach the route
    assert a.cors == CorsPolicy(
        origins=("https://app.example.com", "http://localhost:*"),
        methods=("GET", "POST"),
        credentials=True,
        route_methods=frozenset({"GET", "POST"}),
    )
    assert b.methods == frozenset() and b.cors is not None
    assert b.cors.methods == ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    assert b.cors.max_age == 60 and b.cors.route_methods is None
    assert c.cors is None
    assert d.cors is not None and d.cors.route_methods is None and d.cors.methods == ("GET",)


@pytest.mark.parametrize(
    ("cors", "path", "reason"),
    [
        ({"origins": ["*"], "credentials": True}, "cors.origins[0]", "'*' with credentials"),
        (
            {"origins": ["https://a.example/"]},
            "cors.origins[0]",
            "did you mean 'https://a.example'",
        ),
        ({"origins": ["null"]}, "cors.origins[0]", "sandboxed"),
        ({"origins": ["https://*.com"]}, "cors.origins[0]", "top-level domain"),
        ({"origins": ["https://a.*.example"]}, "cors.origins[0]", "left-most host labels"),
        ({"origins": ["app.example.com"]}, "cors.origins[0]", "scheme://host[:port]"),
        ({"origins": ["https://a.example:99999"]}, "cors.origins[0]", "1-65535"),
        ({"origins": []}, "cors.origins", "at least one origin"),
        ({"origins": ["https://a.example"], "methods": ["TRACE"]}, "cors.methods[0]", "TRACE"),
        ({"origins": ["https://a.example"], "headers": ["Bad Header"]}, "cors.headers[0]", "token"),
        (
            {"origins": ["https://a.example"], "credentials": True, "expose_headers": ["*"]},
            "cors.expose_headers[0]",
            "literally",
        ),
        ({"origins": ["https://a.example"], "max_age": -5}, "cors.max_age", ">= 0"),
        ({"origin": ["https://a.example"]}, "cors.origin", "unknown key"),
    ],
)
def test_native_cors_mistakes(tmp_path: Path, cors: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_native(tmp_path, [native_route()], cors=cors)
    assert any(e.startswith(f"{path}: ") and reason in e for e in errors(info)), errors(info)
    with pytest.raises(ConfigError) as info:
        load_native(tmp_path, [native_route(cors=cors)])
    assert any(e.startswith(f"routes[0].{path}: ") for e in errors(info)), errors(info)


def test_ocelot_cors_extension_global_and_route(tmp_path: Path) -> None:
    cfg = load_ocelot(
        tmp_path,
        [
            ocelot_route(UpstreamHttpMethod=["Get"]),
            ocelot_route(
                UpstreamPathTemplate="/b",
                DownstreamPathTemplate="/b",
                cors={"allowedOrigins": ["https://b.example"], "AllowCredentials": "true"},
            ),
        ],
        Cors={"AllowedOrigins": ["*"], "ExposedHeaders": ["X-Request-Id"], "MaxAge": "600"},
    )
    a, b = cfg.routes
    assert a.cors is not None and a.cors.origins == ("*",) and a.cors.max_age == 600
    assert a.cors.expose_headers == ("X-Request-Id",) and a.methods == {"GET", "OPTIONS"}
    assert b.cors is not None and b.cors.origins == ("https://b.example",) and b.cors.credentials
    with pytest.raises(ConfigError) as info:
        load_ocelot(
            tmp_path, [ocelot_route(Cors={"AllowedOrigins": ["*"], "AllowCredentials": True})]
        )
    assert any(e.startswith("Routes[0].Cors.AllowedOrigins[0]: ") for e in errors(info))


def test_native_anonymous_options_needs_auth_to_mean_anything(tmp_path: Path) -> None:
    cfg = load_native(
        tmp_path,
        [
            native_route(auth={"providers": ["Bearer"]}, anonymous_options=True),
            native_route(path="/b", auth={"providers": ["Bearer"]}),
            native_route(path="/c", anonymous_options=True),
        ],
    )
    assert [r.anonymous_options for r in cfg.routes] == [True, False, False]
    assert any(w.path == "routes[2].anonymous_options" for w in cfg.warnings)


def test_explain_shows_ip_rules_cors_and_the_options_rule(tmp_path: Path) -> None:
    from propylon.explain import explain

    cfg = load_ocelot(
        tmp_path,
        [
            ocelot_route(
                AuthenticationOptions={"AuthenticationProviderKey": "Bearer"},
                SecurityOptions={"IPBlockedList": ["10.0.0.0/8"], "IPAllowedList": ["10.1.0.0/16"]},
                Cors={"AllowedOrigins": ["https://app.example"], "AllowCredentials": True},
            )
        ],
    )
    text = str(explain(cfg, "OPTIONS", "/a"))
    assert "ip rules:       allow 10.1.0.0/16; block 10.0.0.0/8 (else 403)" in text
    assert "cors:           origins https://app.example; with credentials" in text
    assert "OPTIONS requests skip authentication" in text
    assert "this OPTIONS request skips it" in text and "answer 401" not in text
    assert "answer 401" in str(explain(cfg, "GET", "/a"))
