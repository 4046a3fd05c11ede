"""CidrSet: the one address-set implementation (trusted proxies, /stats access, IP rules)."""

from __future__ import annotations

import pytest

from propylon.http.cidr import CACHE_SIZE, CidrError, CidrSet, parse_address, parse_range


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


# -- the entry forms Ocelot's SecurityOptions read (IPAddressRange), here for every list ----


@pytest.mark.parametrize(
    ("entry", "inside", "outside"),
    [
        ("192.168.1.1", ["192.168.1.1", "::ffff:192.168.1.1"], ["192.168.1.2", "192.168.1.0"]),
        ("192.168.1.0/24", ["192.168.1.0", "192.168.1.255"], ["192.168.2.0", "192.168.0.255"]),
        ("192.168.1.0/29", ["192.168.1.7"], ["192.168.1.8", "192.168.1.10"]),
        ("192.168.1.0/255.255.255.0", ["192.168.1.15"], ["192.168.10.15"]),
        (
            "192.168.1.0-192.168.1.10",
            ["192.168.1.0", "192.168.1.8", "192.168.1.10"],
            ["192.168.1.11"],
        ),
        ("192.168.1.0 - 192.168.1.10", ["192.168.1.5"], ["192.168.1.15"]),
        ("192.168.1.0-10", ["192.168.1.8"], ["192.168.1.15", "192.168.0.5"]),
        (
            "192.168.1.100-200",
            ["192.168.1.150", "192.168.1.100"],
            ["192.168.1.99", "192.168.1.201"],
        ),
        ("10.0.0.0-10.255.255.255", ["10.1.2.3"], ["11.0.0.0", "9.255.255.255"]),
        ("0.0.0.0/0", ["1.2.3.4", "::ffff:8.8.8.8"], ["::1", "2001:db8::1"]),
        ("2001:db8::1", ["2001:db8::1", "2001:DB8:0::1"], ["2001:db8::2"]),
        ("2001:db8::/32", ["2001:db8:ffff::1"], ["2001:db9::1", "10.0.0.1"]),
        ("fe80::1-fe80::ff", ["fe80::1", "fe80::80", "fe80::80%eth0"], ["fe80::100", "fe80::"]),
        ("::/0", ["::1", "2001:db8::1"], ["127.0.0.1", "::ffff:127.0.0.1"]),
        ("::ffff:10.0.0.0/104", ["10.9.9.9", "::ffff:10.9.9.9"], ["11.0.0.1"]),
    ],
)
def test_every_entry_form(entry: str, inside: list[str], outside: list[str]) -> None:
    nets = CidrSet([entry])
    for address in inside:
        assert address in nets, (entry, address)
    for address in outside:
        assert address not in nets, (entry, address)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("", "empty"),
        ("nope", "not an IP address"),
        ("10.0.0.0/33", "prefix is 0-32"),
        ("::/129", "prefix is 0-128"),
        ("10.0.0.0/255.0.255.0", "not contiguous"),
        ("::/ffff::", "prefix length"),
        ("10.0.0.9-10.0.0.1", "ends before it starts"),
        ("10.0.0.9-5", "ends before it starts"),
        ("10.0.0.1-256", "octet"),
        ("10.0.0.1-::1", "mix IPv4 and IPv6"),
        ("fe80::1-ff", "IPv4 only"),
        ("fe80::1%eth0", "zone index"),
        ("010.0.0.1", "not an IP address"),
        ("10.0.0", "not an IP address"),
    ],
)
def test_bad_entries_say_why(entry: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_range(entry)
    with pytest.raises(CidrError):
        CidrSet(["127.0.0.1", entry])


def test_host_bits_are_flagged_and_spelled_canonically() -> None:
    span = parse_range("192.168.1.5/24")
    assert span.host_bits and str(span) == "192.168.1.0/24"
    assert not parse_range("192.168.1.0/24").host_bits
    assert str(parse_range("10.0.0.1")) == "10.0.0.1/32"
    assert str(parse_range("10.0.0.0-10.0.0.255")) == "10.0.0.0/24"
    assert str(parse_range("10.0.0.1-3")) == "10.0.0.1-10.0.0.3"


def test_overlapping_and_adjacent_entries_merge_into_the_same_answers() -> None:
    nets = CidrSet(["10.0.0.0-10.0.0.9", "10.0.0.10-10.0.0.20", "10.0.0.5/31", "10.0.0.30"])
    assert nets._v4_starts == (0x0A000000, 0x0A00001E)
    for last in range(0, 21):
        assert f"10.0.0.{last}" in nets
    assert "10.0.0.21" not in nets and "10.0.0.30" in nets and "10.0.0.31" not in nets


def test_an_empty_set_is_false_and_contains_nothing() -> None:
    nets = CidrSet([])
    assert not nets
    assert "127.0.0.1" not in nets
    assert CidrSet(["::1"])
