"""CidrSet: the one address-set implementation (trusted proxies, /stats access, IP rules)."""

from __future__ import annotations

import pytest

from propylon.http.cidr import CACHE_SIZE, CidrError, CidrSet, parse_address


def test_v4_v6_and_mapped_addresses() -> None:
    nets = CidrSet(["10.0.0.0/8", "2001:db8::/32", "::ffff:192.0.2.0/120"])
    assert "10.1.2.3" in nets
    assert "::ffff:10.1.2.3" in nets  # a dual-stack socket's view of an IPv4 client
    assert "2001:db8::1" in nets
    assert "::ffff:192.0.2.9" in nets
    assert "11.0.0.1" not in nets
    assert "2001:db9::1" not in nets
    assert "unix" not in nets and "" not in nets and "10.0.0.1.evil" not in nets


def test_a_bad_entry_is_named_by_index() -> None:
    with pytest.raises(CidrError) as info:
        CidrSet(["10.0.0.0/8", "not-a-network"])
    assert info.value.index == 1


def test_parse_address_shows_mapped_ipv6_as_ipv4() -> None:
    assert str(parse_address("::ffff:127.0.0.1")) == "127.0.0.1"
    assert parse_address("nope") is None


def test_cache_stays_bounded_and_answers_stay_right_under_a_flood() -> None:
    nets = CidrSet(["10.0.0.0/8"])
    for i in range(3 * CACHE_SIZE):
        assert f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}" in nets
        assert f"2001:db8::{i:x}" not in nets
    assert len(nets._cache) <= CACHE_SIZE
    assert "10.0.0.1" in nets
    assert "127.0.0.1" not in nets
