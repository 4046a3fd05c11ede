"""The verified-token cache: a repeated token is not verified again, within its limits."""

from __future__ import annotations

import time

import jwt
import pytest

from propylon.auth import Authenticator, AuthFailure
from propylon.config.model import JwtProviderSpec

SECRET = b"cache-test-secret-that-is-long-enough!!"
OTHER_SECRET = b"a-different-secret-that-is-long-enough!"
NOW = time.time()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def token(sub: str = "alice", ttl: float = 600, secret: bytes = SECRET) -> bytes:
    return jwt.encode({"sub": sub, "exp": int(NOW + ttl)}, secret, algorithm="HS256").encode()


def bearer(tok: bytes) -> list[bytes]:
    return [b"Bearer " + tok]


def verifications(auth: Authenticator) -> int:
    """Signatures checked so far by every provider: the expensive part a cache hit skips."""
    return sum(v.signature_checks for v in auth.verifiers.values())


def authenticator(clock: Clock, cache_size: int = 16, leeway: float = 0) -> Authenticator:
    return Authenticator(
        {
            "a": JwtProviderSpec("a", ("HS256",), secret=SECRET, leeway=leeway),
            "b": JwtProviderSpec("b", ("HS256",), secret=OTHER_SECRET),
        },
        cache_size=cache_size,
        clock=clock,
    )


def test_a_repeated_token_is_served_from_the_cache() -> None:
    auth = authenticator(Clock())
    first = auth.authenticate(bearer(token()), ("a",))
    again = auth.authenticate([bytes(b"Bearer " + token())], ("a",))  # a new bytes object
    assert again is first
    assert verifications(auth) == 1


def test_a_cached_token_is_served_only_to_routes_trusting_its_provider() -> None:
    auth = authenticator(Clock())
    auth.authenticate(bearer(token()), ("a",))
    with pytest.raises(AuthFailure):
        auth.authenticate(bearer(token()), ("b",))
    assert auth.authenticate(bearer(token()), ("b", "a")).provider == "a"
    assert verifications(auth) == 2  # "b" had to verify (and refuse) it


def test_a_cached_token_stops_working_when_it_expires() -> None:
    clock = Clock()
    auth = authenticator(clock)
    tok = token(ttl=60)
    auth.authenticate(bearer(tok), ("a",))
    clock.now = NOW + 59
    auth.authenticate(bearer(tok), ("a",))
    assert verifications(auth) == 1
    clock.now = NOW + 61
    with pytest.raises(AuthFailure) as refused:
        auth.authenticate(bearer(tok), ("a",))
    assert refused.value.reason == "token expired"


def test_leeway_extends_a_cached_token_exactly_as_it_extends_a_fresh_one() -> None:
    clock = Clock()
    auth = authenticator(clock, leeway=30)
    tok = token(ttl=60)
    auth.authenticate(bearer(tok), ("a",))
    clock.now = NOW + 85
    assert auth.authenticate(bearer(tok), ("a",)).subject == "alice"
    clock.now = NOW + 95
    with pytest.raises(AuthFailure):
        auth.authenticate(bearer(tok), ("a",))


def test_failures_are_not_cached() -> None:
    clock = Clock()
    auth = authenticator(clock)
    tok = token(ttl=60)
    clock.now = NOW + 120  # the gateway's clock says the token has expired
    with pytest.raises(AuthFailure):
        auth.authenticate(bearer(tok), ("a",))
    clock.now = NOW
    assert auth.authenticate(bearer(tok), ("a",)).subject == "alice"


def test_the_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    auth = authenticator(Clock(), cache_size=2)
    first, second, third = token("u1"), token("u2"), token("u3")
    for tok in (first, second, third):
        auth.authenticate(bearer(tok), ("a",))
    assert len(auth.cache) == 2
    auth.authenticate(bearer(third), ("a",))
    auth.authenticate(bearer(second), ("a",))
    assert verifications(auth) == 3
    auth.authenticate(bearer(first), ("a",))
    assert verifications(auth) == 4  # evicted, so verified again
    assert len(auth.cache) == 2


def test_a_zero_sized_cache_verifies_every_time() -> None:
    auth = authenticator(Clock(), cache_size=0)
    for _ in range(3):
        auth.authenticate(bearer(token()), ("a",))
    assert verifications(auth) == 3
    assert len(auth.cache) == 0


def test_duplicate_authorization_is_refused_even_for_a_cached_token() -> None:
    auth = authenticator(Clock())
    tok = token()
    auth.authenticate(bearer(tok), ("a",))
    with pytest.raises(AuthFailure) as refused:
        auth.authenticate(bearer(tok) + bearer(tok), ("a",))
    assert refused.value.reason == "duplicate Authorization"


@pytest.mark.parametrize(
    "spelling",
    [b"Bearer  %s", b"bearer %s", b"BEARER    %s", b"Bearer " + b" " * 50_000 + b"%s"],
)
def test_other_spellings_share_the_canonical_entry(spelling: bytes) -> None:
    """Security review item 4: padding one valid token must not make new entries."""
    auth = authenticator(Clock())
    tok = token()
    first = auth.authenticate([spelling % tok], ("a",))
    for i in range(20):
        padded = spelling.replace(b" ", b" " * (i + 1), 1) % tok
        assert auth.authenticate([padded], ("a",)) is first
    assert auth.authenticate(bearer(tok), ("a",)) is first
    assert len(auth.cache) == 1
    assert verifications(auth) == 1
    assert auth.cache.bytes < 4096


def test_the_cache_is_bounded_by_bytes_too() -> None:
    auth = authenticator(Clock(), cache_size=10_000)
    auth.cache.max_bytes = 64 * 1024
    for i in range(200):
        auth.authenticate(bearer(token(f"user-{i}")), ("a",))
    assert auth.cache.bytes <= 64 * 1024
    assert 0 < len(auth.cache) < 200


def test_a_huge_token_is_verified_every_time_and_never_kept() -> None:
    auth = authenticator(Clock())
    big = jwt.encode(
        {"sub": "alice", "exp": int(NOW + 600), "pad": "x" * 10_000}, SECRET, algorithm="HS256"
    ).encode()
    for _ in range(3):
        assert auth.authenticate(bearer(big), ("a",)).subject == "alice"
    assert len(auth.cache) == 0
    assert verifications(auth) == 3
