"""Who may read GET /stats by address."""

from __future__ import annotations

import pytest

from propylon.config.model import StatsAccess
from propylon.stats import StatsGate


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("192.168.1.20", False),
        ("::2", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("unix", False),
        ("", False),
        ("127.0.0.1.evil", False),
    ],
)
def test_default_is_loopback_only(client: str, allowed: bool) -> None:
    gate = StatsGate(StatsAccess())
    assert gate.client_allowed(client) is allowed
    assert gate.client_allowed(client) is allowed  # and the same again from the cache


def test_configured_networks_replace_loopback() -> None:
    gate = StatsGate(StatsAccess(allow_cidrs=("10.0.0.0/8", "2001:db8::/32")))
    assert gate.client_allowed("10.200.3.4")
    assert gate.client_allowed("::ffff:10.1.1.1")
    assert gate.client_allowed("2001:db8::7")
    assert not gate.client_allowed("127.0.0.1")
    assert not gate.client_allowed("11.0.0.1")
    assert not gate.client_allowed("2001:db9::1")


def test_mapped_ipv6_networks_are_honoured_too() -> None:
    gate = StatsGate(StatsAccess(allow_cidrs=("::ffff:192.0.2.0/120",)))
    assert gate.client_allowed("::ffff:192.0.2.9")
    assert not gate.client_allowed("::ffff:192.0.3.9")


def test_no_networks_means_nobody_by_address() -> None:
    gate = StatsGate(StatsAccess(allow_cidrs=()))
    assert not gate.client_allowed("127.0.0.1")
    assert not gate.client_allowed("::1")


def test_disabled_stats_admit_nobody() -> None:
    gate = StatsGate(StatsAccess(enabled=False))
    assert not gate.client_allowed("127.0.0.1")


def test_host_bits_in_a_cidr_are_tolerated_and_a_bad_one_is_named() -> None:
    assert StatsGate(StatsAccess(allow_cidrs=("10.1.2.3/8",))).client_allowed("10.9.9.9")
    with pytest.raises(ValueError, match=r"stats\.allow_cidrs\[1\]"):
        StatsGate(StatsAccess(allow_cidrs=("10.0.0.0/8", "not-a-network")))
