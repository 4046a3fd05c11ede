"""The signed hop, gateway side: what reaches a real upstream on loopback.

Authenticated routes with assertions on carry exactly one ``X-Gateway-Assertion`` that
servicekit's verifier accepts with the gateway's published keys; a client's copy never gets
through, in any letter case, on any route, whether assertions are on or off."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from servicekit.assertion import AssertionVerifier, FileKeys, InvalidAssertion

from propylon.auth.assertion import load_or_create_key, signer_for
from propylon.config.loader import load_config
from propylon.config.model import GatewayConfig
from tests.support.client import request
from tests.support.gateway import SECRET, running, token
from tests.support.processes import gateway_process
from tests.support.upstreams import RecordingUpstream, Seen, free_port

FORGED = [
    "X-Gateway-Assertion",
    "x-gateway-assertion",
    "X-GATEWAY-ASSERTION",
    "x-GaTeWaY-aSsErTiOn",
]
# CGI/WSGI stacks read X_Gateway_Assertion as the same header.
FORGED_UNDERSCORED = "X_Gateway_Assertion"
ENV = {"TEST_SECRET": SECRET.decode()}


def _native(tmp_path: Path, port: int, *, signing: bool = True, lifetime: int = 30) -> Path:
    load_or_create_key(tmp_path / "keys" / "assertion.pem")
    downstream = {"hosts": [f"127.0.0.1:{port}"]}
    auth = {"providers": ["Bearer"]}
    document: dict[str, Any] = {
        "propylon": 1,
        "auth_providers": {"Bearer": {"secret_env": "TEST_SECRET", "algorithms": ["HS256"]}},
        "routes": [
            {"path": "/public", "downstream": downstream},
            {
                "path": "/profiles",
                "downstream": downstream,
                "auth": auth,
                "claim_headers": {"X-User-Role": "role"},
                "assertion": {"audience": "profiles"},
            },
            {
                "path": "/by-email",
                "downstream": downstream,
                "auth": auth,
                "claim_headers": {"User": "email"},
                "assertion": {"audience": "profiles"},
            },
            {"path": "/legacy", "downstream": downstream, "auth": auth, "assertion": False},
            {"path": "/plain", "downstream": downstream, "auth": auth},
        ],
    }
    if signing:
        document["assertion"] = {
            "key_file": "keys/assertion.pem",
            "lifetime": lifetime,
            "public_keys_file": "published/gateway-keys.json",
        }
    else:
        for item in document["routes"]:
            item.pop("assertion", None)
    path = tmp_path / "propylon.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@dataclass
class Hop:
    upstream: RecordingUpstream
    config: GatewayConfig
    port: int
    keys_file: Path

    async def get(self, path: str, *headers: tuple[str, str]) -> Seen:
        before = len(self.upstream.seen)
        response = await request(self.port, "GET", path, list(headers))
        assert response.status == 200, (response.status, response.body)
        assert len(self.upstream.seen) == before + 1
        return self.upstream.last

    def verify(self, token_text: str, audience: str = "profiles") -> dict[str, Any]:
        keys = FileKeys(self.keys_file)
        keys.load()
        asserted = AssertionVerifier(keys, audience=audience).verify(token_text)
        return dict(asserted.claims)


@pytest.fixture
async def hop(tmp_path: Path) -> AsyncIterator[Hop]:
    upstream = await RecordingUpstream().start()
    try:
        cfg = load_config(str(_native(tmp_path, upstream.port)), env=ENV)
        assert cfg.assertion is not None and cfg.assertion.public_keys_file is not None
        # What `propylon run` publishes before it serves (tested as a process below).
        keys_file = Path(cfg.assertion.public_keys_file)
        signer_for(cfg.assertion).write_public_keys(keys_file)
        async with running(cfg) as gateway:
            yield Hop(upstream, cfg, gateway.port, keys_file)
    finally:
        await upstream.close()


def _bearer(sub: str = "alice", **claims: Any) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token(sub, **claims)}")


async def test_one_assertion_that_verifies_for_the_routes_service(hop: Hop) -> None:
    started = int(time.time())
    seen = await hop.get(
        "/profiles", _bearer("alice", role="admin", scope="read write"), (FORGED[0], "forged")
    )
    found = seen.headers_named("X-Gateway-Assertion")
    assert len(found) == 1
    claims = hop.verify(found[0])
    assert claims["sub"] == "alice"
    assert claims["aud"] == "profiles"
    assert claims["iss"] == "propylon"
    assert (claims["role"], claims["scope"]) == ("admin", "read write")
    assert started <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 30  # the configured lifetime
    # Another service does not accept it: the audience is the route's service.
    with pytest.raises(InvalidAssertion):
        hop.verify(found[0], audience="identity")
    # The bare headers still go too, for services that do not verify yet.
    assert seen.header("User") == "alice"
    assert seen.headers_named("X-User-Role") == ["admin"]


async def test_the_subject_is_the_identity_the_route_sends(hop: Hop) -> None:
    seen = await hop.get("/by-email", _bearer("u-123", email="ada@example.org"))
    assert seen.header("User") == "ada@example.org"
    (assertion,) = seen.headers_named("X-Gateway-Assertion")
    assert hop.verify(assertion)["sub"] == "ada@example.org"


async def test_a_caller_without_role_or_scope_gets_neither_claim(hop: Hop) -> None:
    seen = await hop.get("/profiles", _bearer("bob"))
    claims = hop.verify(seen.headers_named("X-Gateway-Assertion")[0])
    assert claims["sub"] == "bob"
    assert "role" not in claims and "scope" not in claims


async def test_the_default_audience_is_the_downstream_host_name(hop: Hop) -> None:
    seen = await hop.get("/plain", _bearer("carol"))
    (assertion,) = seen.headers_named("X-Gateway-Assertion")
    assert hop.verify(assertion, audience="127.0.0.1")["sub"] == "carol"


@pytest.mark.parametrize("name", [*FORGED, FORGED_UNDERSCORED])
async def test_a_forged_assertion_never_reaches_the_upstream(hop: Hop, name: str) -> None:
    forged = (name, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.")
    on_public = await hop.get("/public", forged)
    assert on_public.headers_named("X-Gateway-Assertion") == []
    assert [k for k, _ in on_public.headers if "assertion" in k.lower()] == []
    opted_out = await hop.get("/legacy", forged, _bearer("dave"))
    assert opted_out.headers_named("X-Gateway-Assertion") == []
    assert opted_out.header("User") == "dave"
    signed = await hop.get("/profiles", forged, _bearer("erin"))
    (only,) = signed.headers_named("X-Gateway-Assertion")
    assert only != forged[1]
    assert hop.verify(only)["sub"] == "erin"


async def test_a_refused_token_sends_nothing_upstream(hop: Hop) -> None:
    before = len(hop.upstream.seen)
    response = await request(
        hop.port, "GET", "/profiles", [("Authorization", "Bearer nope"), (FORGED[0], "x")]
    )
    assert response.status == 401
    assert len(hop.upstream.seen) == before


@pytest.mark.parametrize("name", FORGED)
async def test_with_assertions_off_a_forged_one_is_still_stripped(
    tmp_path: Path, name: str
) -> None:
    upstream = await RecordingUpstream().start()
    try:
        cfg = load_config(str(_native(tmp_path, upstream.port, signing=False)), env=ENV)
        assert cfg.assertion is None
        async with running(cfg) as gateway:
            for path, headers in (("/public", []), ("/plain", [_bearer()])):
                response = await request(gateway.port, "GET", path, [*headers, (name, "forged")])
                assert response.status == 200
                assert upstream.last.headers_named("X-Gateway-Assertion") == []
    finally:
        await upstream.close()


# -- as a process: `propylon run` publishes the keys, `propylon check` names the problem -----


def _ocelot(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "ocelot.json"
    route = {
        "UpstreamPathTemplate": "/me",
        "UpstreamHttpMethod": ["GET"],
        "DownstreamPathTemplate": "/me",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": port}],
        "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
    }
    path.write_text(json.dumps({"Routes": [route]}))
    return path


def _environment(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        "PROPYLON_JWT_SECRET": SECRET.decode(),
        "PROPYLON_ASSERTION_KEY_FILE": str(tmp_path / "gateway" / "assertion.pem"),
        "PROPYLON_ASSERTION_PUBLIC_KEYS_FILE": str(tmp_path / "public" / "gateway-keys.json"),
        "PROPYLON_ASSERTION_AUDIENCES": f"127.0.0.1:{port}=identity",
    }


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "propylon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


async def test_propylon_run_publishes_the_keys_the_services_verify_with(tmp_path: Path) -> None:
    upstream = await RecordingUpstream().start()
    try:
        env = _environment(tmp_path, upstream.port)
        made = _cli("assertion-key", env["PROPYLON_ASSERTION_KEY_FILE"])
        assert made.returncode == 0, made.stderr
        assert "created" in made.stdout
        key_mode = os.stat(env["PROPYLON_ASSERTION_KEY_FILE"]).st_mode
        assert stat.S_IMODE(key_mode) == 0o600
        port = free_port()
        with gateway_process(_ocelot(tmp_path, upstream.port), port, 1, env=env):
            response = await request(port, "GET", "/me", [_bearer("frank")])
            assert response.status == 200
        (assertion,) = upstream.last.headers_named("X-Gateway-Assertion")
        keys = FileKeys(Path(env["PROPYLON_ASSERTION_PUBLIC_KEYS_FILE"]))
        keys.load()
        asserted = AssertionVerifier(keys, audience="identity").verify(assertion)
        assert asserted.subject == "frank"
        assert jwt.get_unverified_header(assertion)["alg"] == "EdDSA"
    finally:
        await upstream.close()


def test_check_names_a_missing_or_wrong_key_file(tmp_path: Path) -> None:
    env = _environment(tmp_path, 8001)
    config = _ocelot(tmp_path, 8001)
    missing = _cli("check", str(config), env=env)
    assert missing.returncode == 1
    assert (
        f"<environment>: PROPYLON_ASSERTION_KEY_FILE: error: {env['PROPYLON_ASSERTION_KEY_FILE']}"
        ": no such file" in missing.stdout
    )
    Path(env["PROPYLON_ASSERTION_KEY_FILE"]).parent.mkdir(parents=True)
    Path(env["PROPYLON_ASSERTION_KEY_FILE"]).write_text("not a key")
    wrong = _cli("check", str(config), env=env)
    assert wrong.returncode == 1
    assert "not an unencrypted PEM private key" in wrong.stdout
    Path(env["PROPYLON_ASSERTION_KEY_FILE"]).unlink()
    assert _cli("assertion-key", env["PROPYLON_ASSERTION_KEY_FILE"]).returncode == 0
    good = _cli("check", str(config), env=env)
    assert good.returncode == 0, good.stdout
    assert "signed gateway assertions: on 1 of 1 authenticated routes" in good.stdout
    assert "audiences identity" in good.stdout


def test_run_refuses_to_start_when_it_cannot_publish_the_keys(tmp_path: Path) -> None:
    env = _environment(tmp_path, 8001)
    assert _cli("assertion-key", env["PROPYLON_ASSERTION_KEY_FILE"]).returncode == 0
    (tmp_path / "public").write_text("a file where a directory should be")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _cli("run", "--config", str(_ocelot(tmp_path, 8001)), "--port", str(port), env=env)
    assert result.returncode == 2
    assert f"{env['PROPYLON_ASSERTION_PUBLIC_KEYS_FILE']}: cannot write" in result.stderr
