"""Authorization: AllowedScopes (any of) and RouteClaimsRequirement (exact values)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from propylon.auth import Principal, authorize
from propylon.auth.principal import scopes_of
from propylon.config.model import AuthRequirement


def principal(**claims: Any) -> Principal:
    claims.setdefault("sub", "alice")
    claims.setdefault("exp", 4102444800)
    return Principal(
        subject=claims["sub"],
        claims=MappingProxyType(claims),
        scopes=scopes_of(claims),
        expires_at=float(claims["exp"]),
        provider="p",
    )


def needs(scopes: tuple[str, ...] = (), **claims: str) -> AuthRequirement:
    return AuthRequirement(
        providers=("p",), allowed_scopes=scopes, required_claims=tuple(claims.items())
    )


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "a b  c"}, {"a", "b", "c"}),
        ({"scope": ["a", "b"]}, {"a", "b"}),
        ({"scp": "a"}, {"a"}),
        ({"scp": ["a", 1, None, ""]}, {"a"}),
        ({"scope": "a", "scp": ["b"]}, {"a", "b"}),
        ({"scope": 7}, set()),
        ({}, set()),
    ],
)
def test_scopes_come_from_scope_and_scp_as_string_or_array(
    claims: dict[str, Any], scopes: set[str]
) -> None:
    assert scopes_of(claims) == scopes


def test_no_requirement_beyond_authentication_admits_anyone() -> None:
    assert authorize(principal(), needs())


def test_allowed_scopes_are_any_of() -> None:
    requirement = needs(("product.edit", "product.delete"))
    assert authorize(principal(scope="product.read product.delete"), requirement)
    assert authorize(principal(scp=["product.edit"]), requirement)
    assert not authorize(principal(scope="product.read"), requirement)
    assert not authorize(principal(), requirement)


def test_scope_matching_is_exact() -> None:
    requirement = needs(("product.edit",))
    assert not authorize(principal(scope="Product.Edit product"), requirement)


@pytest.mark.parametrize(
    ("claims", "ok"),
    [
        ({"role": "admin"}, True),
        ({"role": "Admin"}, False),  # values compare exactly
        ({"role": "admin "}, False),
        ({"role": ["user", "admin"]}, True),  # an array holds when it contains the value
        ({"role": ["user"]}, False),
        ({"role": {"admin": True}}, False),
        ({"role": None}, False),
        ({}, False),
    ],
)
def test_a_required_claim_needs_its_exact_value(claims: dict[str, Any], ok: bool) -> None:
    assert authorize(principal(**claims), needs(role="admin")) is ok


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, "5"), (True, "true"), (False, "false"), ([1, 2], "2"), (1.5, "1.5")],
)
def test_claim_values_compare_as_strings(value: Any, expected: str) -> None:
    assert authorize(principal(level=value), needs(level=expected))


def test_claim_names_match_exactly_first_then_case_insensitively() -> None:
    # The second seed writes "Role": "admin" for a token whose claim is "role".
    assert authorize(principal(role="admin"), needs(Role="admin"))
    # When both spellings exist, the exact one decides.
    assert not authorize(principal(role="admin", Role="user"), needs(Role="admin"))
    assert authorize(principal(role="user", Role="admin"), needs(Role="admin"))


def test_aspnet_claim_type_uris_from_ocelot_files_find_the_jwt_claim() -> None:
    uri = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
    assert authorize(principal(role=["admin"]), needs(**{uri: "admin"}))
    assert not authorize(principal(role="user"), needs(**{uri: "admin"}))


def test_every_required_claim_must_hold_and_scopes_too() -> None:
    requirement = needs(("orders",), role="admin", tenant="t1")
    assert authorize(principal(scope="orders", role="admin", tenant="t1"), requirement)
    assert not authorize(principal(scope="orders", role="admin", tenant="t2"), requirement)
    assert not authorize(principal(scope="billing", role="admin", tenant="t1"), requirement)
