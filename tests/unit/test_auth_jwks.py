"""Reading a JWKS document: what becomes a key, and what is left out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from propylon.auth.jwks import MAX_KEYS, parse_jwks

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
EVERYTHING = frozenset({"RS256", "PS256", "ES256", "ES384", "EdDSA"})


def rsa_jwk(**extra: Any) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True), **extra}


def ec_jwk(**extra: Any) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True), **extra}


def ed_jwk(**extra: Any) -> dict[str, Any]:
    return {**OKPAlgorithm.to_jwk(ED_KEY.public_key(), as_dict=True), **extra}


def document(*members: object) -> bytes:
    return json.dumps({"keys": list(members)}).encode()


def test_each_key_type_gets_the_algorithms_its_type_and_the_provider_allow() -> None:
    parsed = parse_jwks(document(rsa_jwk(kid="r"), ec_jwk(kid="e"), ed_jwk(kid="o")), EVERYTHING)
    assert parsed.skipped == ()
    by_kid = {k.kid: k for k in parsed.keys.keys}
    assert by_kid["r"].algorithms == {"RS256", "PS256"}
    assert by_kid["e"].algorithms == {"ES384"}  # the curve decides, not the provider list
    assert by_kid["o"].algorithms == {"EdDSA"}
    assert isinstance(by_kid["r"].material, rsa.RSAPublicKey)


def test_a_jwk_alg_pins_the_key_to_that_algorithm() -> None:
    parsed = parse_jwks(document(rsa_jwk(kid="r", alg="PS256")), EVERYTHING)
    assert parsed.keys.candidates("r", "PS256")
    assert parsed.keys.candidates("r", "RS256") == ()


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (rsa_jwk(kid="x", alg="RS512"), "alg 'RS512' is not allowed"),
        (rsa_jwk(kid="x", alg="HS256"), "alg 'HS256' is not allowed"),
        (rsa_jwk(kid="x", use="enc"), "use 'enc'"),
        (rsa_jwk(kid="x", key_ops=["encrypt"]), "key_ops"),
        ({"kty": "oct", "k": "c2VjcmV0", "kid": "x"}, "kty 'oct'"),
        ({"kty": "RSA", "kid": "x", "n": "AQAB"}, "not a valid RSA key"),
        (rsa_jwk(kid=7), "kid is not a string"),
        (rsa_jwk(kid="x", alg=["RS256"]), "alg is not a string"),
        (rsa_jwk(kid="x", alg={"RS256": 1}), "alg is not a string"),
        ("a string", "not an object"),
    ],
)
def test_unusable_members_are_skipped_with_a_reason(member: object, why: str) -> None:
    parsed = parse_jwks(document(member, ed_jwk(kid="good")), EVERYTHING)
    assert [k.kid for k in parsed.keys.keys] == ["good"]
    assert len(parsed.skipped) == 1
    assert why in parsed.skipped[0]


def test_keys_the_provider_cannot_use_are_skipped() -> None:
    parsed = parse_jwks(document(rsa_jwk(kid="r"), ed_jwk(kid="o")), frozenset({"EdDSA"}))
    assert [k.kid for k in parsed.keys.keys] == ["o"]
    assert "no configured algorithm fits" in parsed.skipped[0]


def test_a_member_with_private_parameters_contributes_only_its_public_half() -> None:
    private = RSAAlgorithm.to_jwk(RSA_KEY, as_dict=True)
    private.pop("key_ops", None)
    assert "d" in private
    parsed = parse_jwks(document({**private, "kid": "r"}), EVERYTHING)
    assert isinstance(parsed.keys.keys[0].material, rsa.RSAPublicKey)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"keys": {}}', document(), document({"kty": "oct", "k": "AA"})],
)
def test_a_document_without_usable_keys_is_an_error(body: bytes) -> None:
    with pytest.raises(ValueError, match="JWKS"):
        parse_jwks(body, EVERYTHING)


def test_the_number_of_keys_is_bounded() -> None:
    parsed = parse_jwks(document(*[ed_jwk(kid=str(i)) for i in range(MAX_KEYS + 5)]), EVERYTHING)
    assert len(parsed.keys.keys) == MAX_KEYS
    assert "more than" in parsed.skipped[-1]


def test_candidates_by_kid_and_without_kid() -> None:
    keys = parse_jwks(document(rsa_jwk(kid="a"), ed_jwk(kid="b"), ed_jwk()), EVERYTHING).keys
    assert [k.kid for k in keys.candidates("b", "EdDSA")] == ["b"]
    assert keys.candidates("b", "RS256") == ()
    assert [k.kid for k in keys.candidates(None, "EdDSA")] == ["b", None]
    assert keys.candidates("zzz", "EdDSA") == ()
    assert keys.knows("a") and not keys.knows("zzz")
