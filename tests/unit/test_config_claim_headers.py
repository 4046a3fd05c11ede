"""AddHeadersToRequest (Ocelot) and claim_headers (native) in the config readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from propylon.config.loader import load_config
from propylon.config.model import ClaimHeader, ConfigError

ENV = {"PROPYLON_JWT_SECRET": "x" * 40}


def _ocelot(tmp_path: Path, add: dict[str, str], auth: bool = True) -> Path:
    route: dict[str, object] = {
        "UpstreamPathTemplate": "/p",
        "DownstreamPathTemplate": "/p",
        "DownstreamHostAndPorts": [{"Host": "svc", "Port": 80}],
        "AddHeadersToRequest": add,
    }
    if auth:
        route["AuthenticationOptions"] = {"AuthenticationProviderKey": "Bearer"}
    path = tmp_path / "ocelot.json"
    path.write_text(json.dumps({"Routes": [route]}))
    return path


def test_ocelot_claims_expressions(tmp_path: Path) -> None:
    cfg = load_config(
        str(
            _ocelot(
                tmp_path, {"X-Role": "Claims[role] > value", "X-Org": "claims[org] > value[1] > |"}
            )
        ),
        env=ENV,
    )
    assert cfg.routes[0].claim_headers == (
        ClaimHeader("X-Role", "role"),
        ClaimHeader("X-Org", "org", index=1, delimiter="|"),
    )
    assert not [w for w in cfg.warnings if "AddHeadersToRequest" in w.path]


@pytest.mark.parametrize(
    ("add", "key", "fragment"),
    [
        ({"X-Role": "role"}, "Routes[0].AddHeadersToRequest.X-Role", "not a claims expression"),
        (
            {"Content-Length": "Claims[a] > value"},
            "Routes[0].AddHeadersToRequest.Content-Length",
            "cannot carry",
        ),
        (
            {"Bad Name": "Claims[a] > value"},
            'Routes[0].AddHeadersToRequest["Bad Name"]',
            "header name",
        ),
    ],
)
def test_ocelot_bad_claim_headers_name_the_key(
    tmp_path: Path, add: dict[str, str], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(str(_ocelot(tmp_path, add)), env=ENV)
    problems = [p for p in caught.value.problems if p.severity == "error"]
    assert [p.path for p in problems] == [key]
    assert fragment in problems[0].message


def test_claim_headers_need_authentication(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(str(_ocelot(tmp_path, {"X-Role": "Claims[role] > value"}, auth=False)), env=ENV)
    assert any(
        p.path == "Routes[0].AddHeadersToRequest" and "authentication" in p.message
        for p in caught.value.problems
    )


def test_native_claim_headers(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "propylon: 1\n"
        "auth_providers: {Bearer: {secret_env: PROPYLON_JWT_SECRET}}\n"
        "routes:\n"
        "  - path: /p\n"
        "    downstream: {hosts: ['svc:80']}\n"
        "    auth: {providers: [Bearer]}\n"
        "    claim_headers: {X-User-Role: role}\n"
    )
    cfg = load_config(str(path), env=ENV)
    assert cfg.routes[0].claim_headers == (ClaimHeader("X-User-Role", "role"),)


@pytest.mark.parametrize("name", ["User", "user", "USER"])
def test_ocelot_sub_onto_the_identity_header_is_the_identity_not_another_header(
    tmp_path: Path, name: str
) -> None:
    cfg = load_config(str(_ocelot(tmp_path, {name: "Claims[sub] > value"})), env=ENV)
    assert cfg.routes[0].claim_headers == ()
    assert cfg.routes[0].identity_claim is None  # the sub: what the identity carries anyway


@pytest.mark.parametrize("name", ["User", "uSeR"])
def test_ocelot_another_claim_onto_the_identity_header_replaces_the_sub(
    tmp_path: Path, name: str
) -> None:
    cfg = load_config(
        str(_ocelot(tmp_path, {name: "Claims[email] > value", "X-Role": "Claims[role] > value"})),
        env=ENV,
    )
    assert cfg.routes[0].claim_headers == (ClaimHeader("X-Role", "role"),)
    assert cfg.routes[0].identity_claim == ClaimHeader("User", "email")


def test_ocelot_indexed_sub_is_a_claim_of_its_own(tmp_path: Path) -> None:
    cfg = load_config(str(_ocelot(tmp_path, {"User": "Claims[sub] > value[1] > |"})), env=ENV)
    assert cfg.routes[0].identity_claim == ClaimHeader("User", "sub", index=1, delimiter="|")


def test_one_header_mapped_twice_is_an_error(tmp_path: Path) -> None:
    add = {"User": "Claims[sub] > value", "user": "Claims[email] > value"}
    with pytest.raises(ConfigError) as caught:
        load_config(str(_ocelot(tmp_path, add)), env=ENV)
    errors = [p for p in caught.value.problems if p.severity == "error"]
    assert [p.path for p in errors] == ["Routes[0].AddHeadersToRequest.user"]
    assert "Routes[0].AddHeadersToRequest.User" in errors[0].message
    assert "twice" in errors[0].message


def _native(tmp_path: Path, claim_headers: str, identity_header: str | None = None) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(
        "propylon: 1\n"
        + (f"identity_header: {identity_header}\n" if identity_header else "")
        + "auth_providers: {Bearer: {secret_env: PROPYLON_JWT_SECRET}}\n"
        "routes:\n"
        "  - path: /p\n"
        "    downstream: {hosts: ['svc:80']}\n"
        "    auth: {providers: [Bearer]}\n"
        f"    claim_headers: {claim_headers}\n"
    )
    return path


def test_native_identity_header_mapping(tmp_path: Path) -> None:
    cfg = load_config(str(_native(tmp_path, "{user: email, X-Role: role}")), env=ENV)
    assert cfg.routes[0].identity_claim == ClaimHeader("User", "email")
    assert cfg.routes[0].claim_headers == (ClaimHeader("X-Role", "role"),)


def test_native_mapping_follows_the_configured_identity_header(tmp_path: Path) -> None:
    cfg = load_config(str(_native(tmp_path, "{x-caller: sub, User: uid}", "X-Caller")), env=ENV)
    assert cfg.routes[0].identity_claim is None
    # "User" is an ordinary header here: the identity header is X-Caller.
    assert cfg.routes[0].claim_headers == (ClaimHeader("User", "uid"),)
