"""The gateway's signed assertions verify with servicekit's verifier, exactly as the
contract says (services/README.md, "The signed hop")."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from servicekit.assertion import AssertionVerifier, FileKeys, InvalidAssertion

from propylon.auth.assertion import AssertionSigner, load_or_create_key


class Clock:
    now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def _verifier(tmp_path: Path, signer: AssertionSigner, audience: str) -> AssertionVerifier:
    keys_file = tmp_path / "gateway-keys.json"
    signer.write_public_keys(keys_file)
    keys = FileKeys(keys_file)
    keys.load()
    return AssertionVerifier(keys, audience=audience)


def test_an_assertion_verifies_for_its_audience_only(tmp_path: Path) -> None:
    signer = AssertionSigner(load_or_create_key(tmp_path / "key.pem"))
    line = signer.line("alice", "profiles", {"role": "admin", "scope": ["a", "b"]})
    name, _, token = line.partition(b": ")
    assert name == b"X-Gateway-Assertion"
    asserted = _verifier(tmp_path, signer, "profiles").verify(token.decode())
    assert (asserted.subject, asserted.role, asserted.scopes) == ("alice", "admin", ("a", "b"))
    with pytest.raises(InvalidAssertion):
        _verifier(tmp_path, signer, "identity").verify(token.decode())


def test_a_signed_line_is_reused_for_half_its_lifetime(tmp_path: Path) -> None:
    clock = Clock()
    signer = AssertionSigner(load_or_create_key(tmp_path / "k.pem"), lifetime=60, clock=clock)
    first = signer.line("alice", "profiles", {})
    clock.now += 29
    assert signer.line("alice", "profiles", {}) is first
    assert signer.line("alice", "profiles", {"role": "admin"}) != first
    clock.now += 2
    assert signer.line("alice", "profiles", {}) != first


def test_the_key_file_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "assertion-key.pem"
    key = load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_or_create_key(path)
    assert AssertionSigner(again).kid == AssertionSigner(key).kid
    assert json.loads(json.dumps(AssertionSigner(key).jwks()))["keys"][0]["kty"] == "OKP"
    (tmp_path / "bad.pem").write_text("nope")
    with pytest.raises(ValueError, match=r"bad\.pem"):
        load_or_create_key(tmp_path / "bad.pem")
