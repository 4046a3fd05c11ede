"""The signed hop, service side: with a gateway key source configured, a service believes
only a valid `X-Gateway-Assertion` and ignores bare `User` / `X-User-Role` headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from identity.app import create_app as create_identity
from profiles.app import create_app as create_profiles
from servicekit.assertion import GatewayTrust, JwksUrlKeys, thumbprint
from servicekit.serving import ServiceThread

from tests.services.client import Reply, ServiceClient
from tests.services.conftest import ADMIN, identity_settings, profiles_settings
from tests.services.gateway_keys import GatewayKey, JwksServer, write_jwks
from tests.services.processes import refused_start


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def with_assertion(
    client: ServiceClient, method: str, path: str, token: str, **kw: object
) -> Reply:
    headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
    headers["X-Gateway-Assertion"] = token
    return client.call(method, path, headers=headers, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gateway_key() -> GatewayKey:
    return GatewayKey()


@pytest.fixture(scope="module")
def verifying_identity(
    gateway_key: GatewayKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceClient]:
    directory = tmp_path_factory.mktemp("signed-identity")
    keys_file = write_jwks(directory / "gateway-keys.json", gateway_key)
    settings = identity_settings(
        f"sqlite:///{directory / 'identity.db'}",
        directory / "keys",
        gateway=GatewayTrust(audience="identity", keys_file=keys_file),
    )
    with ServiceThread(create_identity(settings)) as service:
        yield ServiceClient(service.url)


@pytest.fixture(scope="module")
def jwks(gateway_key: GatewayKey) -> Iterator[JwksServer]:
    with JwksServer(gateway_key).running() as server:
        yield server


@pytest.fixture(scope="module")
def verifying_profiles(
    jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceClient]:
    directory = tmp_path_factory.mktemp("signed-profiles")
    settings = profiles_settings(
        f"sqlite:///{directory / 'profiles.db'}",
        directory / "media",
        # Would believe X-User-Role without verification; with it, only the assertion counts.
        trust_role_header=True,
        gateway=GatewayTrust(audience="profiles", jwks_url=jwks.url),
    )
    with ServiceThread(create_profiles(settings)) as service:
        yield ServiceClient(service.url)


def test_kid_is_the_rfc7638_thumbprint_of_the_ed25519_key() -> None:
    # RFC 8037, appendix A.3: the thumbprint of its example Ed25519 key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "="))
    assert thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_forged_bare_headers_are_refused(verifying_identity: ServiceClient) -> None:
    # Before: `curl 127.0.0.1:8001/auth/users -H 'User: admin'` listed users.
    forged = verifying_identity.get("/auth/users", headers={"User": ADMIN, "X-User-Role": "admin"})
    assert forged.envelope == (401, 405, "Unauthorized")
    promote = verifying_identity.patch(
        f"/auth/users/{ADMIN}/role", {"role": "admin"}, headers={"User": ADMIN}
    )
    assert promote.status == 401


def test_a_valid_assertion_names_the_caller(
    verifying_identity: ServiceClient, gateway_key: GatewayKey
) -> None:
    token = gateway_key.sign("identity", ADMIN, role="admin", scope="users:admin")
    reply = with_assertion(verifying_identity, "GET", "/auth/users", token)
    assert reply.envelope == (200, 203, "DataFound")
    # The bare header cannot change who the assertion says is calling.
    user = verifying_identity.post(
        "/auth/users", {"username": "plain-user", "password": "long enough pw"}
    )
    assert user.status == 201
    as_user = gateway_key.sign("identity", "plain-user", role="user")
    spoofed = with_assertion(
        verifying_identity, "GET", "/auth/users", as_user, headers={"User": ADMIN}
    )
    assert spoofed.envelope == (403, 409, "Restricted")


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda k: k.sign("profiles", ADMIN), id="another-services-audience"),
        pytest.param(lambda k: k.sign("identity", ADMIN, issued=time.time() - 300), id="expired"),
        pytest.param(
            lambda k: k.sign("identity", ADMIN, issued=time.time() + 300), id="issued-later"
        ),
        pytest.param(lambda k: k.sign("identity", ADMIN, issuer="someone"), id="wrong-issuer"),
        pytest.param(lambda k: k.sign("identity", ADMIN, drop=("exp",)), id="no-exp"),
        pytest.param(lambda k: k.sign("identity", ADMIN, drop=("aud",)), id="no-aud"),
        pytest.param(lambda k: k.sign("identity", ADMIN, headers={"typ": "JWT"}), id="wrong-typ"),
        pytest.param(
            lambda k: k.sign("identity", ADMIN, claims={"role": ["admin"]}), id="role-not-a-string"
        ),
        pytest.param(lambda k: k.sign("identity", "bad name!"), id="implausible-subject"),
        pytest.param(
            lambda k: GatewayKey().sign("identity", ADMIN, headers={"kid": k.kid}),
            id="another-key-same-kid",
        ),
        pytest.param(lambda k: GatewayKey().sign("identity", ADMIN), id="unknown-key"),
        pytest.param(lambda k: k.sign("identity", ADMIN)[:-4] + "AAAA", id="bad-signature"),
        pytest.param(lambda k: "not.a.jws", id="garbage"),
    ],
)
def test_invalid_assertions_are_refused(
    verifying_identity: ServiceClient, gateway_key: GatewayKey, forge: object
) -> None:
    token = forge(gateway_key)  # type: ignore[operator]
    reply = with_assertion(verifying_identity, "GET", "/auth/users", token)
    assert reply.envelope == (401, 405, "Unauthorized")
    assert reply.json["message"] == "The request's gateway assertion is not valid."


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


def test_alg_none_and_hmac_with_the_public_key_are_refused(
    verifying_identity: ServiceClient, gateway_key: GatewayKey
) -> None:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "propylon",
        "aud": "identity",
        "sub": ADMIN,
        "iat": now,
        "exp": now + 60,
    }
    header = {"alg": "none", "typ": "gateway-assertion+jwt", "kid": gateway_key.kid}
    none = with_assertion(verifying_identity, "GET", "/auth/users", _unsigned(header, claims))
    assert none.status == 401
    # The classic confusion: HS256 keyed with the published public key.
    confused = _hs256(claims, gateway_key)
    assert with_assertion(verifying_identity, "GET", "/auth/users", confused).status == 401


def _hs256(claims: dict[str, object], key: GatewayKey) -> str:
    # PyJWT refuses to HMAC with PEM key material, which is the point; built by hand.
    header = {"alg": "HS256", "typ": "gateway-assertion+jwt", "kid": key.kid}
    unsigned = _unsigned(header, claims)[:-1]
    signature = hmac.new(key.pem(), unsigned.encode(), hashlib.sha256).digest()
    return unsigned + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def test_public_routes_need_no_assertion(verifying_identity: ServiceClient) -> None:
    assert verifying_identity.get("/healthz").status == 200
    login = verifying_identity.post("/auth/token", {"username": "nobody-here", "password": "x"})
    assert login.status == 401  # credentials checked as ever; no assertion involved


def test_profiles_believes_the_asserted_role_only(
    verifying_profiles: ServiceClient, gateway_key: GatewayKey
) -> None:
    alice = gateway_key.sign("profiles", "alice-owner", role="user")
    created = with_assertion(
        verifying_profiles, "POST", "/profiles", alice, json_body={"display_name": "Alice"}
    )
    assert created.status == 201, created.body
    profile_id = created.json["data"]["id"]

    # Before: `X-User-Role: admin` (with any User) listed everyone's profiles.
    forged = verifying_profiles.get(
        "/profiles", headers={"User": "mallory", "X-User-Role": "admin"}
    )
    assert forged.envelope == (401, 405, "Unauthorized")

    mallory = gateway_key.sign("profiles", "mallory", role="user")
    sneaky = with_assertion(
        verifying_profiles,
        "GET",
        f"/profiles/{profile_id}",
        mallory,
        headers={"X-User-Role": "admin"},
    )
    assert sneaky.status == 404

    admin = gateway_key.sign("profiles", "the-admin", role="admin")
    seen = with_assertion(verifying_profiles, "GET", f"/profiles/{profile_id}", admin)
    assert seen.status == 200 and seen.json["data"]["owner"] == "alice-owner"

    identity_token = gateway_key.sign("identity", "the-admin", role="admin")
    assert with_assertion(verifying_profiles, "GET", "/profiles", identity_token).status == 401


def test_jwks_is_refetched_for_an_unknown_kid_at_most_once_per_interval() -> None:
    old, new = GatewayKey(), GatewayKey()
    clock = Clock()
    with JwksServer(old).running() as server:
        keys = JwksUrlKeys(server.url, min_interval=10, max_age=300, clock=clock)
        keys.load()
        assert keys.key(old.kid) is not None
        assert server.fetches == 1
        # The gateway rotates; the service learns of it on the first unknown kid...
        server.keys.append(new)
        clock.now += 11
        assert keys.key(new.kid) is not None
        assert server.fetches == 2
        # ...but a stream of unknown kids (cheap for anyone to send) is not a stream of fetches.
        for _ in range(50):
            assert keys.key(GatewayKey().kid) is None
        assert server.fetches == 2
        clock.now += 11
        for _ in range(50):
            assert keys.key(GatewayKey().kid) is None
        assert server.fetches == 3
        clock.now += 301  # past max_age: refreshed on the next use
        assert keys.key(old.kid) is not None
        assert server.fetches == 4


def test_an_unreachable_jwks_keeps_the_keys_it_had() -> None:
    key = GatewayKey()
    clock = Clock()
    with JwksServer(key).running() as server:
        keys = JwksUrlKeys(server.url, min_interval=1, max_age=5, clock=clock, timeout=1)
        keys.load()
    clock.now += 10  # stale, and the server is gone
    assert keys.key(key.kid) is not None


def test_a_rewritten_key_file_is_picked_up(tmp_path: Path) -> None:
    first, second = GatewayKey(), GatewayKey()
    keys_file = tmp_path / "gateway.pem"
    keys_file.write_bytes(first.pem())
    settings = profiles_settings(
        f"sqlite:///{tmp_path / 'p.db'}",
        tmp_path / "media",
        gateway=GatewayTrust(audience="profiles", keys_file=keys_file),
    )
    with ServiceThread(create_profiles(settings)) as service:
        profiles = ServiceClient(service.url)
        assert (
            with_assertion(profiles, "GET", "/profiles", first.sign("profiles", "ann")).status
            == 200
        )
        keys_file.write_bytes(second.pem())
        time.sleep(1.2)  # the file is looked at once a second at most
        assert (
            with_assertion(profiles, "GET", "/profiles", second.sign("profiles", "ann")).status
            == 200
        )
        assert (
            with_assertion(profiles, "GET", "/profiles", first.sign("profiles", "ann")).status
            == 401
        )


def test_without_verification_a_warning_says_bare_headers_are_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = profiles_settings(f"sqlite:///{tmp_path / 'p.db'}", tmp_path / "media")
    with caplog.at_level(logging.WARNING), ServiceThread(create_profiles(settings)) as service:
        assert ServiceClient(service.url, "someone").get("/profiles").status == 200
    assert "profiles trusts the bare 'User' header and 'X-User-Role'" in caplog.text


def test_a_malformed_key_file_stops_the_start(tmp_path: Path) -> None:
    keys_file = tmp_path / "gateway-keys.json"
    keys_file.write_text('{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "!!"}]}')
    refusal = refused_start(
        "profiles",
        {
            "PROFILES_DATA_DIR": str(tmp_path),
            "PROFILES_MIGRATE": "true",
            "SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE": str(keys_file),
        },
    )
    assert "Traceback" not in refusal.output
    assert f"gateway key file {keys_file}" in refusal.output


def test_both_key_sources_at_once_is_a_one_line_error(tmp_path: Path) -> None:
    refusal = refused_start(
        "identity",
        {
            "IDENTITY_DATA_DIR": str(tmp_path),
            "SERVICEKIT_GATEWAY_JWKS_URL": "http://127.0.0.1:1/jwks",
            "SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE": str(tmp_path / "k.pem"),
        },
    )
    assert refusal.returncode == 2
    assert refusal.lines == [
        "identity: set one of SERVICEKIT_GATEWAY_JWKS_URL and "
        "SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE, not both"
    ]


def test_openapi_documents_the_assertion_header(verifying_identity: ServiceClient) -> None:
    operation = verifying_identity.get("/openapi.json").json["paths"]["/auth/users"]["get"]
    names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert names == ["X-Gateway-Assertion"]
