"""Configuring the signed hop: the native ``assertion`` block and per-route key, the
``PROPYLON_ASSERTION_*`` variables for Ocelot files, and every problem named by file and
key path."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from propylon.auth.assertion import load_or_create_key
from propylon.config.loader import load_config
from propylon.config.model import ConfigError, GatewayConfig

ENV = {"TEST_SECRET": "s" * 40}
AUTH = {"providers": ["Bearer"]}


def _native(tmp_path: Path, routes: list[dict[str, Any]], **top: Any) -> GatewayConfig:
    document = {
        "propylon": 1,
        "auth_providers": {"Bearer": {"secret_env": "TEST_SECRET"}},
        "routes": routes,
        **top,
    }
    path = tmp_path / "propylon.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_config(str(path), env=ENV)


def _problems(tmp_path: Path, routes: list[dict[str, Any]], **top: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _native(tmp_path, routes, **top)
    return [str(p) for p in caught.value.problems if p.severity == "error"]


def _route(path: str, host: str = "profiles:8002", **kw: Any) -> dict[str, Any]:
    return {"path": path, "downstream": {"hosts": [host]}, **kw}


@pytest.fixture
def key(tmp_path: Path) -> dict[str, Any]:
    load_or_create_key(tmp_path / "assertion.pem")
    return {"key_file": "assertion.pem"}


def test_on_for_every_authenticated_route_with_the_host_name_as_audience(
    tmp_path: Path, key: dict[str, Any]
) -> None:
    cfg = _native(
        tmp_path,
        [
            _route("/public"),
            _route("/profiles", auth=AUTH),
            _route("/users", "identity:8001", auth=AUTH),
            _route("/named", "10.0.0.5:8002", auth=AUTH, assertion={"audience": "profiles"}),
            _route("/old", auth=AUTH, assertion=False),
        ],
        assertion={**key, "issuer": "edge", "lifetime": 20},
    )
    assert [r.assertion_audience for r in cfg.routes] == [
        None,
        "profiles",
        "identity",
        "profiles",
        None,
    ]
    assert cfg.assertion is not None
    assert (cfg.assertion.issuer, cfg.assertion.lifetime) == ("edge", 20)
    assert cfg.assertion.key_file == str((tmp_path / "assertion.pem").resolve())
    assert cfg.assertion.public_keys_file is None


def test_without_the_block_no_route_signs(tmp_path: Path) -> None:
    cfg = _native(tmp_path, [_route("/profiles", auth=AUTH)])
    assert cfg.assertion is None
    assert cfg.routes[0].assertion_audience is None


def test_a_missing_key_file_names_the_file_and_key_path(tmp_path: Path) -> None:
    errors = _problems(tmp_path, [_route("/p", auth=AUTH)], assertion={"key_file": "nope.pem"})
    assert errors == [
        f"{tmp_path / 'propylon.yaml'}: assertion.key_file: error: "
        f"{(tmp_path / 'nope.pem').resolve()}: no such file "
        "(create one with: propylon assertion-key PATH)"
    ]


def _write_key(path: Path, key: Any) -> None:
    """``key`` as an unencrypted PKCS#8 PEM, readable by its owner only."""
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def test_a_key_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    _write_key(tmp_path / "ec.pem", ec.generate_private_key(ec.SECP256R1()))
    (errors,) = _problems(tmp_path, [_route("/p", auth=AUTH)], assertion={"key_file": "ec.pem"})
    assert "assertion.key_file: error:" in errors
    assert "holds an EC key; the assertion key must be Ed25519" in errors


def test_an_unreadable_or_public_key_file_is_refused(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "k.pem")
    (tmp_path / "pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (errors,) = _problems(tmp_path, [_route("/p", auth=AUTH)], assertion={"key_file": "pub.pem"})
    assert "not an unencrypted PEM private key" in errors
    (tmp_path / "dir.pem").mkdir()
    (errors,) = _problems(tmp_path, [_route("/p", auth=AUTH)], assertion={"key_file": "dir.pem"})
    assert "dir.pem: cannot be read" in errors


def test_a_key_readable_by_others_is_a_warning(tmp_path: Path, key: dict[str, Any]) -> None:
    (tmp_path / "assertion.pem").chmod(0o644)
    cfg = _native(tmp_path, [_route("/p", auth=AUTH)], assertion=key)
    assert [str(w) for w in cfg.warnings if "assertion" in w.path] == [
        f"{tmp_path / 'propylon.yaml'}: assertion.key_file: warning: "
        f"{(tmp_path / 'assertion.pem').resolve()} is readable by others (mode 644): chmod 600"
    ]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"lifetime": 0}, "assertion.lifetime: error: must be 2 to 3600 seconds, got 0"),
        ({"lifetime": 86400}, "assertion.lifetime: error: must be 2 to 3600 seconds"),
        ({"issuer": " "}, "assertion.issuer: error: must not be empty"),
        ({"public_keys_file": "assertion.pem"}, "assertion.public_keys_file: error:"),
        ({"key": "x"}, "assertion.key: error:"),
    ],
)
def test_bad_settings_are_named(
    tmp_path: Path, key: dict[str, Any], block: dict[str, Any], message: str
) -> None:
    errors = _problems(tmp_path, [_route("/p", auth=AUTH)], assertion={**key, **block})
    assert any(message in e for e in errors), errors


def test_route_level_mistakes_are_named(tmp_path: Path, key: dict[str, Any]) -> None:
    errors = _problems(
        tmp_path,
        [
            _route("/public", assertion={"audience": "profiles"}),
            {
                "path": "/rr",
                "downstream": {"hosts": ["identity:8001", "profiles:8002"]},
                "auth": AUTH,
            },
            _route("/spaced", auth=AUTH, assertion={"audience": "two words"}),
        ],
        assertion=key,
    )
    assert any("routes[0].assertion: error: needs `auth`" in e for e in errors), errors
    assert any(
        "routes[1].assertion: error: the downstream hosts name different services" in e
        and "set assertion.audience" in e
        for e in errors
    ), errors
    assert any("routes[2].assertion.audience: error:" in e for e in errors), errors


def test_a_route_asking_for_an_assertion_without_the_block(tmp_path: Path) -> None:
    (error,) = _problems(tmp_path, [_route("/p", auth=AUTH, assertion={"audience": "x"})])
    assert "routes[0].assertion: error: assertions are off" in error


def test_assertion_headers_cannot_be_set_from_claims(tmp_path: Path) -> None:
    errors = _problems(
        tmp_path, [_route("/p", auth=AUTH, claim_headers={"X-Gateway-Assertion": "sub"})]
    )
    assert any("claim_headers.X-Gateway-Assertion: error:" in e for e in errors), errors


# -- Ocelot files: the environment -------------------------------------------------------------


def _ocelot(tmp_path: Path, *hosts: tuple[str, int]) -> Path:
    path = tmp_path / "ocelot.json"
    routes = [
        {
            "UpstreamPathTemplate": "/open",
            "DownstreamPathTemplate": "/open",
            "DownstreamHostAndPorts": [{"Host": "identity", "Port": 8001}],
        }
    ]
    for i, (host, port) in enumerate(hosts):
        routes.append(
            {
                "UpstreamPathTemplate": f"/r{i}",
                "DownstreamPathTemplate": f"/r{i}",
                "DownstreamHostAndPorts": [{"Host": host, "Port": port}],
                "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
            }
        )
    path.write_text(json.dumps({"Routes": routes}))
    return path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    load_or_create_key(tmp_path / "gw.pem")
    return {
        "PROPYLON_JWT_SECRET": "s" * 40,
        "PROPYLON_ASSERTION_KEY_FILE": str(tmp_path / "gw.pem"),
        **extra,
    }


def test_ocelot_routes_sign_for_their_host_or_its_mapping(tmp_path: Path) -> None:
    path = _ocelot(tmp_path, ("profiles", 8002), ("127.0.0.1", 8001), ("127.0.0.1", 9000))
    env = _env(
        tmp_path,
        PROPYLON_ASSERTION_AUDIENCES="127.0.0.1:8001=identity, 127.0.0.1=other",
        PROPYLON_ASSERTION_LIFETIME="15",
        PROPYLON_ASSERTION_PUBLIC_KEYS_FILE=str(tmp_path / "pub.json"),
    )
    cfg = load_config(str(path), env=env)
    assert [r.assertion_audience for r in cfg.routes] == [None, "profiles", "identity", "other"]
    assert cfg.assertion is not None and cfg.assertion.lifetime == 15
    assert cfg.assertion.public_keys_file == str(tmp_path / "pub.json")


def test_ocelot_without_the_key_variable_signs_nothing_and_says_so(tmp_path: Path) -> None:
    path = _ocelot(tmp_path, ("profiles", 8002))
    cfg = load_config(
        str(path),
        env={"PROPYLON_JWT_SECRET": "s" * 40, "PROPYLON_ASSERTION_AUDIENCES": "a=b"},
    )
    assert cfg.assertion is None and cfg.routes[1].assertion_audience is None
    assert [str(w) for w in cfg.warnings] == [
        # A security warning: services get no signed assertion the environment asks for.
        "<environment>: PROPYLON_ASSERTION_AUDIENCES: warning (security): ignored: "
        "assertions are off "
        "until PROPYLON_ASSERTION_KEY_FILE is set"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PROPYLON_ASSERTION_LIFETIME", "soon", "must be a whole number of seconds"),
        ("PROPYLON_ASSERTION_AUDIENCES", "profiles", "is not host[:port]=audience"),
        ("PROPYLON_ASSERTION_KEY_FILE", "/no/such/key.pem", "/no/such/key.pem: no such file"),
    ],
)
def test_bad_variables_are_named(tmp_path: Path, variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(str(_ocelot(tmp_path, ("p", 1))), env=_env(tmp_path, **{variable: value}))
    errors = [str(p) for p in caught.value.problems if p.severity == "error"]
    assert any(e.startswith(f"<environment>: {variable}: error:") and message in e for e in errors)


def test_ocelot_round_robin_across_services_needs_one_audience(tmp_path: Path) -> None:
    path = tmp_path / "ocelot.json"
    hosts = [{"Host": "identity", "Port": 8001}, {"Host": "profiles", "Port": 8002}]
    route = {
        "UpstreamPathTemplate": "/x",
        "DownstreamPathTemplate": "/x",
        "DownstreamHostAndPorts": hosts,
        "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
    }
    path.write_text(json.dumps({"Routes": [route]}))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env=_env(tmp_path))
    (error,) = [str(p) for p in caught.value.problems if p.severity == "error"]
    assert error.startswith(f"{path}: Routes[0]: error: the downstream hosts name different")
    assert "PROPYLON_ASSERTION_AUDIENCES" in error
    env = _env(tmp_path, PROPYLON_ASSERTION_AUDIENCES="identity=users,profiles=users")
    assert load_config(str(path), env=env).routes[0].assertion_audience == "users"


def test_a_native_config_ignores_the_variables_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "propylon.yaml"
    path.write_text(yaml.safe_dump({"propylon": 1, "routes": [_route("/p")]}))
    cfg = load_config(str(path), env=_env(tmp_path))
    assert cfg.assertion is None
    assert any(
        str(w).startswith("<environment>: PROPYLON_ASSERTION_KEY_FILE: warning: ignored")
        for w in cfg.warnings
    )


# Loading a DSA key warns as well (it is still refused, with the message below).
@pytest.mark.filterwarnings("ignore:DSA is deprecated")
def test_a_key_of_a_kind_without_a_name_here_is_named_by_its_class(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        # cryptography 51 deprecates DSA: the reason the kinds table no longer names it.
        warnings.simplefilter("ignore")
        from cryptography.hazmat.primitives.asymmetric import dsa

        other = dsa.generate_private_key(1024)
    _write_key(tmp_path / "dsa.pem", other)
    (errors,) = _problems(tmp_path, [_route("/p", auth=AUTH)], assertion={"key_file": "dsa.pem"})
    assert "holds a DSA key; the assertion key must be Ed25519" in errors
