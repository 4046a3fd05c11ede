"""Identity signing keys: RFC 7638 kids, first-start key, rotation without breaking tokens."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from identity.app import create_app
from identity.keys import KeyDirectory, thumbprint
from servicekit.serving import ServiceThread

from tests.services.client import ServiceClient
from tests.services.conftest import ADMIN, ADMIN_PASSWORD, identity_settings


def _b64_int(text: str) -> int:
    return int.from_bytes(jwt.utils.base64url_decode(text), "big")


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # The worked example of RFC 7638, section 3.1.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhA"
        "I4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    public = rsa.RSAPublicNumbers(_b64_int("AQAB"), _b64_int(n)).public_key()
    assert thumbprint(public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_first_start_generates_a_private_key_file(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    settings = identity_settings(f"sqlite:///{tmp_path / 'k.db'}", keys_dir)
    with ServiceThread(create_app(settings)) as service:
        jwks = ServiceClient(service.url).get("/auth/.well-known/jwks.json").json
    files = list(keys_dir.iterdir())
    assert len(files) == 1 == len(jwks["keys"])
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert KeyDirectory(keys_dir).ring().signer.kid == jwks["keys"][0]["kid"]


def _token(identity: ServiceClient) -> str:
    reply = identity.post("/auth/token", {"username": ADMIN, "password": ADMIN_PASSWORD})
    token: str = reply.json["data"]["access_token"]
    return token


def _verify_with_jwks(identity: ServiceClient, token: str) -> str:
    jwks = jwt.PyJWKSet.from_dict(identity.get("/auth/.well-known/jwks.json").json)
    kid: str = jwt.get_unverified_header(token)["kid"]
    jwt.decode(token, jwks[kid].key, algorithms=["RS256"], audience="propylon")
    return kid


def test_rotation_signs_with_the_new_key_and_old_tokens_still_verify(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    settings = identity_settings(f"sqlite:///{tmp_path / 'r.db'}", keys_dir)
    with ServiceThread(create_app(settings)) as service:
        identity = ServiceClient(service.url)
        old_token = _token(identity)
        rotated = subprocess.run(
            [sys.executable, "-m", "identity.keys", "rotate", "--dir", str(keys_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rotated.returncode == 0, rotated.stderr
        new_token = _token(identity)
        assert len(identity.get("/auth/.well-known/jwks.json").json["keys"]) == 2
        old_kid = _verify_with_jwks(identity, old_token)
        new_kid = _verify_with_jwks(identity, new_token)
    assert old_kid != new_kid
    assert new_kid in rotated.stdout
