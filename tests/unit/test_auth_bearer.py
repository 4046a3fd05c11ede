"""Finding the bearer token in the Authorization header values, as the engine hands them over."""

from __future__ import annotations

import pytest

from propylon.auth.bearer import bearer_token
from propylon.auth.failures import AuthFailure

TOKEN = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "value",
    [b"Bearer " + TOKEN, b"bearer " + TOKEN, b"BEARER " + TOKEN, b"bEaReR   " + TOKEN],
)
def test_the_scheme_is_case_insensitive_and_may_be_followed_by_several_spaces(
    value: bytes,
) -> None:
    assert bearer_token([value]) == TOKEN


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "no Authorization header"),
        ([b"Bearer " + TOKEN, b"Bearer " + TOKEN], "duplicate Authorization"),
        ([b"Basic dXNlcjpwYXNz"], "not a Bearer credential"),
        ([b"Bearer"], "not a Bearer credential"),
        ([b"Bearer" + TOKEN], "not a Bearer credential"),
        ([b"Bearer\t" + TOKEN], "not a Bearer credential"),
        ([b"Bearer    "], "empty bearer token"),
    ],
)
def test_anything_but_exactly_one_bearer_credential_is_refused(
    values: list[bytes], reason: str
) -> None:
    with pytest.raises(AuthFailure) as refused:
        bearer_token(values)
    assert refused.value.reason == reason


def test_two_headers_are_refused_even_when_one_is_not_bearer() -> None:
    with pytest.raises(AuthFailure):
        bearer_token([b"Basic dXNlcjpwYXNz", b"Bearer " + TOKEN])
