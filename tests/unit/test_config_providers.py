"""Auth providers: the Bearer provider from PROPYLON_JWT_* and key/algorithm pinning."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from propylon.config.environment import bearer_from_environment
from propylon.config.loader import load_config
from propylon.config.model import ConfigError

OCELOT = (
    '{"Routes": [{"UpstreamPathTemplate": "/a", "DownstreamPathTemplate": "/a", '
    '"DownstreamHostAndPorts": [{"Host": "a", "Port": 1}], '
    '"AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"}}]}'
)


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def env_problems(env: dict[str, str]) -> list[str]:
    _, problems = bearer_from_environment(env)
    return [f"{p.file}: {p.path}: {p.severity}: {p.message}" for p in problems]


def test_no_key_variable_means_no_provider() -> None:
    assert bearer_from_environment({}) == (None, [])
    assert bearer_from_environment({"PROPYLON_JWT_SECRET": "", "PROPYLON_JWT_ISSUER": "x"}) == (
        None,
        [],
    )


def test_secret_defaults_to_hs256_and_reads_the_other_variables() -> None:
    provider, problems = bearer_from_environment(
        {
            "PROPYLON_JWT_SECRET": "s" * 48,
            "PROPYLON_JWT_ISSUER": "https://id.example",
            "PROPYLON_JWT_AUDIENCE": "profiles, auth",
            "PROPYLON_JWT_LEEWAY": "2.5",
        }
    )
    assert problems == []
    assert provider is not None
    assert provider.name == "Bearer"
    assert provider.secret == b"s" * 48
    assert provider.algorithms == ("HS256",)
    assert provider.issuer == "https://id.example"
    assert provider.audience == ("profiles", "auth")
    assert provider.leeway == 2.5


def test_public_key_defaults_to_rs256(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    pem = tmp_path / "key.pem"
    pem.write_bytes(public_pem(rsa_key))
    provider, problems = bearer_from_environment(
        {"PROPYLON_JWT_PUBLIC_KEY": str(pem), "PROPYLON_JWT_ALGORITHMS": ""}
    )
    assert problems == []
    assert provider is not None
    assert provider.algorithms == ("RS256",)
    assert provider.public_key_pem == pem.read_bytes()
    provider, _ = bearer_from_environment(
        {"PROPYLON_JWT_PUBLIC_KEY": str(pem), "PROPYLON_JWT_ALGORITHMS": "PS256,RS512"}
    )
    assert provider is not None and provider.algorithms == ("PS256", "RS512")


def test_jwks_defaults_to_rs256() -> None:
    provider, problems = bearer_from_environment(
        {"PROPYLON_JWKS_URL": "https://id.example/.well-known/jwks.json"}
    )
    assert problems == []
    assert provider is not None
    assert provider.jwks_url == "https://id.example/.well-known/jwks.json"
    assert provider.algorithms == ("RS256",)


def test_algorithm_must_fit_the_key(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    rsa_pem = tmp_path / "rsa.pem"
    rsa_pem.write_bytes(public_pem(rsa_key))
    ec_pem = tmp_path / "ec.pem"
    ec_pem.write_bytes(public_pem(ec.generate_private_key(ec.SECP256R1())))
    assert env_problems(
        {"PROPYLON_JWT_PUBLIC_KEY": str(rsa_pem), "PROPYLON_JWT_ALGORITHMS": "RS256,HS256"}
    ) == [
        "<environment>: PROPYLON_JWT_ALGORITHMS: error: HS256 is an HMAC algorithm and cannot "
        "be used with a public key or JWKS (that is the HS/RS key-confusion attack)"
    ]
    assert env_problems({"PROPYLON_JWT_PUBLIC_KEY": str(ec_pem)}) == [
        "<environment>: PROPYLON_JWT_ALGORITHMS: error: RS256 does not fit an EC secp256r1 key"
    ]
    assert env_problems(
        {"PROPYLON_JWT_PUBLIC_KEY": str(ec_pem), "PROPYLON_JWT_ALGORITHMS": "ES384"}
    ) == ["<environment>: PROPYLON_JWT_ALGORITHMS: error: ES384 does not fit an EC secp256r1 key"]
    provider, _ = bearer_from_environment(
        {"PROPYLON_JWT_PUBLIC_KEY": str(ec_pem), "PROPYLON_JWT_ALGORITHMS": "ES256"}
    )
    assert provider is not None and provider.algorithms == ("ES256",)
    assert env_problems({"PROPYLON_JWT_SECRET": "s" * 32, "PROPYLON_JWT_ALGORITHMS": "RS256"}) == [
        "<environment>: PROPYLON_JWT_ALGORITHMS: error: RS256 needs a public key or JWKS; a "
        "shared secret can only verify HS256/384/512"
    ]
    assert env_problems({"PROPYLON_JWT_SECRET": "s" * 32, "PROPYLON_JWT_ALGORITHMS": "None"}) == [
        "<environment>: PROPYLON_JWT_ALGORITHMS: error: 'none' is never accepted: unsigned "
        "tokens prove nothing"
    ]


def test_bad_key_material(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    private = tmp_path / "private.pem"
    private.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    missing = tmp_path / "missing.pem"
    assert env_problems({"PROPYLON_JWT_PUBLIC_KEY": str(private)}) == [
        f"<environment>: PROPYLON_JWT_PUBLIC_KEY: error: {str(private)!r}: contains a private "
        "key; give the public key (openssl pkey -in key.pem -pubout)"
    ]
    assert env_problems({"PROPYLON_JWT_PUBLIC_KEY": str(garbage)}) == [
        f"<environment>: PROPYLON_JWT_PUBLIC_KEY: error: {str(garbage)!r}: not a PEM public "
        "key or certificate"
    ]
    assert env_problems({"PROPYLON_JWT_PUBLIC_KEY": str(missing)}) == [
        f"<environment>: PROPYLON_JWT_PUBLIC_KEY: error: cannot read {str(missing)!r}: No such "
        "file or directory"
    ]


def test_variable_mistakes() -> None:
    assert env_problems({"PROPYLON_JWT_SECRET": "s" * 32, "PROPYLON_JWKS_URL": "https://k"}) == [
        "<environment>: PROPYLON_JWKS_URL: error: provider 'Bearer' needs exactly one key "
        "source (PROPYLON_JWT_SECRET, PROPYLON_JWT_PUBLIC_KEY, PROPYLON_JWKS_URL); several given"
    ]
    assert env_problems({"PROPYLON_JWT_SECRET": "s" * 32, "PROPYLON_JWT_LEEWAY": "soon"}) == [
        "<environment>: PROPYLON_JWT_LEEWAY: error: must be a number of seconds, got 'soon'"
    ]
    assert env_problems({"PROPYLON_JWT_SECRET": "s" * 32, "PROPYLON_JWT_LEEWAY": "-1"}) == [
        "<environment>: PROPYLON_JWT_LEEWAY: error: leeway must be a finite number >= 0 seconds,"
        " got -1.0"
    ]
    for endless in ("inf", "Infinity", "nan"):
        assert env_problems({"PROPYLON_JWT_SECRET": "s" * 32, "PROPYLON_JWT_LEEWAY": endless}) == [
            "<environment>: PROPYLON_JWT_LEEWAY: error: leeway must be a finite number >= 0"
            f" seconds, got {float(endless)}"
        ]
    assert env_problems({"PROPYLON_JWKS_URL": "ftp://k/jwks"}) == [
        "<environment>: PROPYLON_JWKS_URL: error: JWKS URL must start with http:// or https://, "
        "got 'ftp://k/jwks'"
    ]
    assert env_problems({"PROPYLON_JWT_SECRET": "short"}) == [
        "<environment>: PROPYLON_JWT_SECRET: warning: secret is 5 bytes; HS256 wants at least "
        "32 (RFC 7518 s.3.2)"
    ]


def test_environment_errors_stop_an_ocelot_file_without_repeating_per_route(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ocelot.json"
    path.write_text(OCELOT)
    with pytest.raises(ConfigError) as caught:
        load_config(
            str(path), env={"PROPYLON_JWT_SECRET": "s" * 32, "PROPYLON_JWT_ALGORITHMS": "XX999"}
        )
    assert [str(p) for p in caught.value.problems] == [
        "<environment>: PROPYLON_JWT_ALGORITHMS: error: unknown algorithm 'XX999'; known: "
        "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES256K, ES384, "
        "ES512, ES521, EdDSA"
    ]


def test_native_public_key_file_is_relative_to_the_config(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id.pem").write_bytes(public_pem(rsa_key))
    path = tmp_path / "gateway.yaml"
    path.write_text("""
auth_providers:
  Id: {public_key_file: keys/id.pem, algorithms: [RS256, PS256]}
routes:
  - {path: /a, downstream: {hosts: [a]}, auth: {providers: Id}}
""")
    config = load_config(str(path), env={})
    provider = config.providers["Id"]
    assert provider.public_key_file == str(tmp_path.resolve() / "keys" / "id.pem")
    assert provider.public_key_pem == public_pem(rsa_key)
    assert provider.algorithms == ("RS256", "PS256")
