"""The first seed's route list: its real shape, method forms, service_url and key paths."""

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
)

ENV = {"PROPYLON_JWT_SECRET": "k" * 32}

# The seed's own gateway/config.yaml, as its repository has it.
SEED_CONFIG = r"""
# GET http://profiles:5000/profiles
- method: get
  path_regex: ^\/(profiles)$
  service_url: http://profiles:5000
  auth_required: false

# PATCH http://profiles:5000/profiles/{profile_id}
- method: patch
  path_regex: ^\/(profiles)+\/+[a-zA-Z0-9]$
  service_url: http://profiles:5000
  auth_required: true
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> GatewayConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(str(path), env=ENV if env is None else env)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return [f"{p.path}: {p.severity}: {p.message}" for p in caught.value.problems]


def test_the_seed_config_loads_unchanged(tmp_path: Path) -> None:
    config = load(tmp_path, SEED_CONFIG)
    assert config.format is ConfigFormat.SEED
    public, private = config.routes
    assert public.source == "[0]"
    assert public.methods == frozenset({"GET"})
    assert public.path_is_regex and public.case_sensitive
    assert public.upstream_path == r"^\/(profiles)$"
    assert public.downstream_hosts == (DownstreamHost("profiles", 5000),)
    assert public.downstream_path is None and public.downstream_path_prefix == ""
    assert public.auth is None
    assert private.methods == frozenset({"PATCH"})
    assert private.auth == AuthRequirement(providers=("Bearer",))


def test_method_forms_and_service_url_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
- {method: "*", path_regex: /a, service_url: "https://svc/", auth_required: false}
- {method: [get, Head], path_regex: /b, service_url: "http://svc:81/api/v1/", auth_required: no}
""",
    )
    every, listed = config.routes
    assert every.methods == frozenset()
    assert every.downstream_scheme == "https"
    assert every.downstream_hosts == (DownstreamHost("svc", 443),)
    assert listed.methods == frozenset({"GET", "HEAD"})
    assert listed.downstream_path_prefix == "/api/v1"


def test_every_bad_field_is_named(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
- method: fetch
  path_regex: ^/(a$
  service_url: http://svc
  auth_required: false
- method: get
  path_regex: /b
  service_url: ftp://svc
  auth_required: maybe
- method: [get, brew]
  path_regex: /c
  service_url: http://svc:99999
  auth_required: false
- method: get
  path_regex: /d
  service_url: http://svc?x=1
- method: []
  path_regex: /e
  service_url: http://svc
  auth_required: false
  timeout: 5
""",
    ) == [
        "[0].method: error: unknown HTTP method 'fetch'; use one of DELETE, GET, HEAD, OPTIONS, "
        "PATCH, POST, PUT",
        "[0].path_regex: error: invalid regular expression: missing ), unterminated subpattern "
        "at position 2",
        '[1].auth_required: error: must be true or false, got "maybe"',
        "[2].method[1]: error: unknown HTTP method 'brew'; use one of DELETE, GET, HEAD, "
        "OPTIONS, PATCH, POST, PUT",
        "[2].service_url: error: not a valid service_url: 'http://svc:99999' (Port out of "
        "range 0-65535)",
        "[3].auth_required: error: required key is missing",
        "[4].timeout: warning: unknown key; ignored",
        '[4].method: error: at least one method is required ("*" for every method)',
    ]


def test_scheme_must_be_http(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
- {method: get, path_regex: /b, service_url: "ftp://svc", auth_required: false}
""",
    ) == [
        "[0].service_url: error: service_url must start with http:// or https://, got 'ftp://svc'"
    ]


def test_auth_required_needs_the_bearer_environment(tmp_path: Path) -> None:
    assert problems(tmp_path, SEED_CONFIG, env={}) == [
        "[1].auth_required: error: needs the 'Bearer' auth provider, which is not defined: set "
        "PROPYLON_JWT_SECRET (HS256 secret), PROPYLON_JWT_PUBLIC_KEY (PEM file) or "
        "PROPYLON_JWKS_URL, plus optionally PROPYLON_JWT_ALGORITHMS"
    ]


def test_top_level_must_be_a_list_when_forced(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={}, fmt=ConfigFormat.SEED)
    assert [p.message for p in caught.value.problems] == [
        "a seed route file is a list of routes, got a mapping"
    ]
