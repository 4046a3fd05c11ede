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
