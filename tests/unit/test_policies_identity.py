"""claimed_identity: what a route with an identity claim sends instead of the sub."""

from __future__ import annotations

from propylon.config.model import ClaimHeader
from propylon.policies.identity import IdentityHeader, claimed_identity


def test_the_claim_is_found_like_every_claim_and_rendered_like_a_claim_header() -> None:
    claims = {"sub": "u1", "Email": "ada@example.org", "org": "acme|eu"}
    assert claimed_identity(claims, ClaimHeader("User", "email")) == "ada@example.org"
    assert claimed_identity(claims, ClaimHeader("User", "org", 1, "|")) == "eu"


def test_a_token_without_the_claim_names_nobody() -> None:
    assert claimed_identity({"sub": "u1"}, ClaimHeader("User", "email")) is None
    assert claimed_identity({"sub": "u1", "email": ""}, ClaimHeader("User", "email")) is None
    assert claimed_identity({"org": "acme"}, ClaimHeader("User", "org", 1, "|")) is None


def test_its_line_is_refused_like_an_unsafe_sub() -> None:
    text = claimed_identity({"email": "a\r\nX-Admin: 1"}, ClaimHeader("User", "email"))
    assert text is not None and IdentityHeader("User").line(text) is None
