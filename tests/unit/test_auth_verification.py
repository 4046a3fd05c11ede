"""Verifying tokens with configured keys (secret or PEM), and design.md s.4's JWT threats."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import (
    ECAlgorithm,
    HMACAlgorithm,
    OKPAlgorithm,
    RSAAlgorithm,
    RSAPSSAlgorithm,
)

from propylon.auth import Authenticator, AuthFailure, Principal
from propylon.config.model import JwtProviderSpec

SECRET = b"a-shared-secret-of-at-least-64-bytes-for-hs512-" + b"x" * 20
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC256 = ec.generate_private_key(ec.SECP256R1())
EC384 = ec.generate_private_key(ec.SECP384R1())
EC521 = ec.generate_private_key(ec.SECP521R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
RSA_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def pem_of(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "exp": int(time.time()) + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Any, alg: str, payload: dict[str, Any] | None = None, **headers: Any) -> bytes:
    return jwt.encode(payload or claims(), key, algorithm=alg, headers=headers or None).encode()


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> bytes:
    """A token assembled by hand, the way an attacker would."""
    head = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(payload).encode())
    return head + b"." + b64(signature)


def bearer(token: bytes) -> list[bytes]:
    return [b"Bearer " + token]


HS = JwtProviderSpec("hs", ("HS256", "HS384", "HS512"), secret=SECRET)
RS = JwtProviderSpec("rs", ("RS256", "PS256"), public_key_pem=RSA_PEM)


@pytest.fixture
def auth() -> Iterator[Authenticator]:
    yield Authenticator({"hs": HS, "rs": RS})


def refusal(auth: Authenticator, token: bytes, providers: tuple[str, ...] = ("rs",)) -> str:
    with pytest.raises(AuthFailure) as refused:
        auth.authenticate(bearer(token), providers)
    text = str(refused.value) + refused.value.reason
    for segment in token.split(b"."):
        if len(segment) > 8:  # the reason never quotes the token
            assert segment.decode() not in text
    return refused.value.reason


@pytest.mark.parametrize(
    ("alg", "private", "spec_key"),
    [
        ("HS256", SECRET, {"secret": SECRET}),
        ("HS384", SECRET, {"secret": SECRET}),
        ("HS512", SECRET, {"secret": SECRET}),
        ("RS256", RSA_KEY, {"public_key_pem": RSA_PEM}),
        ("RS512", RSA_KEY, {"public_key_pem": RSA_PEM}),
        ("PS256", RSA_KEY, {"public_key_pem": RSA_PEM}),
        ("PS384", RSA_KEY, {"public_key_pem": RSA_PEM}),
        ("ES256", EC256, {"public_key_pem": pem_of(EC256)}),
        ("ES384", EC384, {"public_key_pem": pem_of(EC384)}),
        ("ES512", EC521, {"public_key_pem": pem_of(EC521)}),
        ("EdDSA", ED_KEY, {"public_key_pem": pem_of(ED_KEY)}),
    ],
)
def test_each_algorithm_verifies_with_its_key(
    alg: str, private: Any, spec_key: dict[str, Any]
) -> None:
    auth = Authenticator({"p": JwtProviderSpec("p", (alg,), **spec_key)})
    exp = int(time.time()) + 300
    principal = auth.authenticate(bearer(sign(private, alg, claims(exp=exp))), ("p",))
    assert principal == Principal(
        subject="alice",
        claims={"sub": "alice", "exp": exp},
        scopes=frozenset(),
        expires_at=float(exp),
        provider="p",
    )


def test_principal_carries_scopes_from_scope_and_scp_and_read_only_claims(
    auth: Authenticator,
) -> None:
    token = sign(RSA_KEY, "RS256", claims(scope="orders.read  orders.write", scp=["admin", 3]))
    principal = auth.authenticate(bearer(token), ("rs",))
    assert principal.scopes == {"orders.read", "orders.write", "admin"}
    assert principal.provider == "rs"
    with pytest.raises(TypeError):
        principal.claims["sub"] = "mallory"  # type: ignore[index]


# -- design.md s.4 -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", [b"", b"anything"])
def test_alg_none_is_refused(auth: Authenticator, alg: str, signature: bytes) -> None:
    token = forge({"alg": alg, "typ": "JWT"}, claims(), signature)
    with pytest.raises(AuthFailure):
        auth.authenticate(bearer(token), ("hs", "rs"))


def test_hs256_signed_with_the_rsa_public_key_is_refused_by_an_rs256_provider(
    auth: Authenticator,
) -> None:
    header = {"alg": "HS256", "typ": "JWT"}
    unsigned = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims()).encode())
    for secret in (
        RSA_PEM,
        RSA_PEM.strip(),
        RSA_KEY.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    ):
        mac = hmac.new(secret, unsigned, hashlib.sha256).digest()
        assert refusal(auth, unsigned + b"." + b64(mac)) == "algorithm not allowed"


def test_pyjwt_is_never_handed_an_hmac_algorithm_for_a_public_key(
    auth: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, type]] = []
    for algorithm_class in (
        HMACAlgorithm,
        RSAAlgorithm,
        RSAPSSAlgorithm,
        ECAlgorithm,
        OKPAlgorithm,
    ):
        original = algorithm_class.verify

        def recording(
            self: Any, msg: bytes, key: Any, sig: bytes, *, _original: Any = original
        ) -> Any:
            calls.append((type(self).__name__, type(key)))
            return _original(self, msg, key, sig)

        monkeypatch.setattr(algorithm_class, "verify", recording)
    every_alg = ["HS256", "HS384", "HS512", "RS256", "RS384", "PS256", "ES256", "EdDSA", "none"]
    for alg in every_alg:
        for key in (RSA_PEM, SECRET, b"k"):
            mac = hmac.new(key, b"x", hashlib.sha256).digest()
            with pytest.raises(AuthFailure):
                auth.authenticate(bearer(forge({"alg": alg}, claims(), mac)), ("rs", "hs"))
    assert calls  # PyJWT was reached for the algorithms the providers allow
    for algorithm_name, key_type in calls:
        assert (algorithm_name == "HMACAlgorithm") == (key_type is bytes)


def test_an_embedded_jwk_is_not_used(auth: Authenticator) -> None:
    attacker_jwk = RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key(), as_dict=True)
    token = sign(ATTACKER_KEY, "RS256", claims(sub="root"), jwk=attacker_jwk)
    assert refusal(auth, token) == "bad signature"


def test_jku_and_x5u_headers_do_not_change_which_key_verifies(auth: Authenticator) -> None:
    forged = sign(ATTACKER_KEY, "RS256", jku="http://127.0.0.1:9/jwks", x5u="http://127.0.0.1:9/c")
    assert refusal(auth, forged) == "bad signature"
    genuine = sign(RSA_KEY, "RS256", jku="http://127.0.0.1:9/jwks")
    assert auth.authenticate(bearer(genuine), ("rs",)).subject == "alice"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (claims(exp=None), "required claim missing"),
        (claims(exp=int(time.time()) - 5), "token expired"),
        (claims(exp=str(int(time.time()) + 600)), "exp is not a number"),
        (claims(exp=True), "exp is not a number"),
        (claims(nbf=int(time.time()) + 600), "token not yet valid"),
        (claims(nbf="0"), "nbf is not a number"),
        (claims(aud="someone-else"), "wrong audience"),
        (claims(sub=None), "token has no string sub"),
        (claims(sub=42), "sub is not a string"),
        (claims(jti=42), "jti is not a string"),
        (claims(iat=int(time.time()) + 600), "token not yet valid"),
        (claims(iat="0"), "iat is not a number"),
        (claims(exp=float("inf")), "malformed token"),  # not JSON (serialised as Infinity)
        (claims(sub=""), "token has no string sub"),
    ],
)
def test_claims_that_do_not_hold_are_refused(
    auth: Authenticator, payload: dict[str, Any], reason: str
) -> None:
    assert refusal(auth, sign(RSA_KEY, "RS256", payload)) == reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (claims(iss="https://evil.test", aud="api"), "wrong issuer"),
        (claims(aud="api"), "required claim missing"),
        (claims(iss="https://id.test"), "required claim missing"),
        (claims(iss="https://id.test", aud=["web", "mobile"]), "wrong audience"),
    ],
)
def test_issuer_and_audience_are_required_when_configured(
    payload: dict[str, Any], reason: str
) -> None:
    spec = JwtProviderSpec(
        "rs", ("RS256",), public_key_pem=RSA_PEM, issuer="https://id.test", audience=("api",)
    )
    auth = Authenticator({"rs": spec})
    assert refusal(auth, sign(RSA_KEY, "RS256", payload)) == reason
    good = sign(RSA_KEY, "RS256", claims(iss="https://id.test", aud=["web", "api"]))
    assert auth.authenticate(bearer(good), ("rs",)).subject == "alice"


def test_leeway_tolerates_clock_skew_but_no_more() -> None:
    spec = JwtProviderSpec("rs", ("RS256",), public_key_pem=RSA_PEM, leeway=30)
    auth = Authenticator({"rs": spec})
    now = int(time.time())
    assert auth.authenticate(bearer(sign(RSA_KEY, "RS256", claims(exp=now - 10))), ("rs",))
    assert auth.authenticate(bearer(sign(RSA_KEY, "RS256", claims(nbf=now + 10))), ("rs",))
    assert refusal(auth, sign(RSA_KEY, "RS256", claims(exp=now - 60))) == "token expired"


def test_an_unknown_critical_header_extension_is_refused(auth: Authenticator) -> None:
    token = sign(RSA_KEY, "RS256", crit=["exp-ext"], **{"exp-ext": 1})
    assert refusal(auth, token) == "unsupported critical header"


@pytest.mark.parametrize(
    "token",
    [b"not-a-token", b"a.b.c", b"eyJhbGciOiJSUzI1NiJ9.e30.c2ln", b"e30.e30.c2ln"],
)
def test_malformed_tokens_are_refused(auth: Authenticator, token: bytes) -> None:
    with pytest.raises(AuthFailure):
        auth.authenticate(bearer(token), ("rs", "hs"))


def test_a_forged_signature_is_refused(auth: Authenticator) -> None:
    head, body, _sig = sign(RSA_KEY, "RS256").split(b".")
    other = sign(RSA_KEY, "RS256", claims(sub="bob")).split(b".")[2]
    assert refusal(auth, head + b"." + body + b"." + other) == "bad signature"


def test_providers_are_tried_in_order_and_the_first_that_verifies_wins() -> None:
    twin = JwtProviderSpec("twin", ("HS256",), secret=SECRET)
    auth = Authenticator({"hs": HS, "twin": twin, "rs": RS})
    token = sign(SECRET, "HS256")
    assert auth.authenticate(bearer(token), ("rs", "twin", "hs")).provider == "twin"
    assert auth.authenticate(bearer(token), ("nope", "hs")).provider == "hs"
    assert refusal(auth, token, ("rs",)) == "algorithm not allowed"
    assert refusal(auth, token, ("nope",)) == "unknown provider"
    assert refusal(auth, token, ()) == "no provider"


def test_a_token_is_refused_for_a_provider_with_another_secret() -> None:
    other = JwtProviderSpec("other", ("HS256",), secret=b"another-secret-" * 4)
    auth = Authenticator({"hs": HS, "other": other})
    assert refusal(auth, sign(SECRET, "HS256"), ("other",)) == "bad signature"


async def test_authenticate_async_verifies_like_authenticate(auth: Authenticator) -> None:
    principal = await auth.authenticate_async(bearer(sign(SECRET, "HS384")), ("hs",))
    assert principal.provider == "hs"
    with pytest.raises(AuthFailure):
        await auth.authenticate_async([], ("hs",))


def test_time_claims_of_any_size_are_compared_not_crashed_on() -> None:
    """JSON integers have no size limit: an exp beyond any float is a token that never
    expires (PyJWT accepts it too), an nbf or iat beyond it is not valid yet; neither may
    turn into an OverflowError (a 500)."""
    auth = Authenticator({"hs": JwtProviderSpec("hs", ("HS256",), secret=SECRET)})
    huge = 10**400
    principal = auth.authenticate(bearer(sign(SECRET, "HS256", claims(exp=huge))), ("hs",))
    assert principal.expires_at == float("inf")
    assert auth.authenticate(bearer(sign(SECRET, "HS256", claims(exp=huge))), ("hs",)) is principal
    for name in ("nbf", "iat"):
        with pytest.raises(AuthFailure) as refused:
            auth.authenticate(bearer(sign(SECRET, "HS256", claims(**{name: huge}))), ("hs",))
        assert refused.value.reason == "token not yet valid"
    with pytest.raises(AuthFailure) as refused:
        auth.authenticate(bearer(sign(SECRET, "HS256", claims(exp=-huge))), ("hs",))
    assert refused.value.reason == "token expired"
