"""IP allow/block rules: the cases of Ocelot's IPSecurityPolicyTests and
SecurityOptionsCreatorTests, ported (same addresses, same expected outcomes), plus IPv6 and
the address forms a dual-stack socket produces."""

from __future__ import annotations

import pytest

from propylon.config.ip_rules import effective
from propylon.config.model import IpRules
from propylon.policies.ip_rules import IpPolicy


def admits(client: str, allowed: str = "", blocked: str = "", exclude: bool = False) -> bool:
    rules = IpRules(tuple(filter(None, [allowed])), tuple(filter(None, [blocked])), exclude)
    return IpPolicy(rules).admits(client)


@pytest.mark.parametrize(
    ("client", "allowed", "blocked", "exclude", "admitted"),
    [
        # Should_No_blocked_Ip_and_allowed_Ip
        ("192.168.1.1", "", "", False, True),
        # Should_blockedIp_clientIp_block / _Not_block
        ("192.168.1.1", "", "192.168.1.1", False, False),
        ("192.168.1.2", "", "192.168.1.1", False, True),
        # Should_allowedIp_clientIp_block / _Not_block (Ocelot's names are inverted)
        ("192.168.1.1", "192.168.1.1", "", False, True),
        ("192.168.1.2", "192.168.1.1", "", False, False),
        # Should_cidrNotation_allowed24 / allowed29 / blocked24
        ("192.168.10.5", "192.168.1.0/24", "", False, False),
        ("192.168.1.5", "192.168.1.0/24", "", False, True),
        ("192.168.1.10", "192.168.1.0/29", "", False, False),
        ("192.168.1.1", "", "192.168.1.0/24", False, False),
        ("192.168.10.1", "", "192.168.1.0/24", False, True),
        # Should_range_allowed / range_blocked
        ("192.168.1.15", "192.168.1.0-192.168.1.10", "", False, False),
        ("192.168.1.8", "192.168.1.0-192.168.1.10", "", False, True),
        ("192.168.1.5", "", "192.168.1.0-192.168.1.10", False, False),
        ("192.168.1.15", "", "192.168.1.0-192.168.1.10", False, True),
        # Should_shortRange_allowed / shortRange_blocked
        ("192.168.1.15", "192.168.1.0-10", "", False, False),
        ("192.168.1.8", "192.168.1.0-10", "", False, True),
        ("192.168.1.5", "", "192.168.1.0-10", False, False),
        ("192.168.1.15", "", "192.168.1.0-10", False, True),
        # Should_ipSubnet_allowed / ipSubnet_blocked
        ("192.168.10.15", "192.168.1.0/255.255.255.0", "", False, False),
        ("192.168.1.15", "192.168.1.0/255.255.255.0", "", False, True),
        ("192.168.1.15", "", "192.168.1.0/255.255.255.0", False, False),
        ("192.168.10.1", "", "192.168.1.0/255.255.255.0", False, True),
        # Should_exludeAllowedFromBlocked_moreAllowed
        ("192.168.1.150", "192.168.0.0/255.255.0.0", "192.168.1.100-200", False, False),
        ("192.168.1.150", "192.168.0.0/255.255.0.0", "192.168.1.100-200", True, True),
        # Should_exludeAllowedFromBlocked_moreBlocked
        ("192.168.1.10", "192.168.1.10-20", "192.168.1.0/23", False, False),
        ("192.168.1.10", "192.168.1.10-20", "192.168.1.0/23", True, True),
        # ... and outside the allowed part the block (or the allow list) still refuses
        ("192.168.1.50", "192.168.1.10-20", "192.168.1.0/23", True, False),
        # IPv6, and IPv4 clients as a dual-stack socket shows them
        ("2001:db8::5", "2001:db8::/64", "", False, True),
        ("2001:db8:1::5", "2001:db8::/64", "", False, False),
        ("2001:db8::5", "", "2001:db8::1-2001:db8::ff", False, False),
        ("2001:db8::100", "", "2001:db8::1-2001:db8::ff", False, True),
        ("::ffff:192.168.1.1", "", "192.168.1.1", False, False),
        ("::ffff:192.168.1.2", "192.168.1.1", "", False, False),
        ("fe80::5%eth0", "", "fe80::/10", False, False),
        # no address at all: a block list lets it pass, an allow list refuses it
        ("", "", "192.168.1.1", False, True),
        ("unix", "192.168.1.1", "", False, False),
    ],
)
def test_ocelot_ip_security_policy_cases(
    client: str, allowed: str, blocked: str, exclude: bool, admitted: bool
) -> None:
    assert admits(client, allowed, blocked, exclude) is admitted
    # the answer is remembered per address; the second one must agree
    policy = IpPolicy(
        IpRules(tuple(filter(None, [allowed])), tuple(filter(None, [blocked])), exclude)
    )
    assert policy.admits(client) is admitted
    assert policy.admits(client) is admitted


def test_route_rules_replace_global_ones_whole() -> None:
    """Should_route_config_overrides_global_config: the global rules would admit
    192.168.1.10 only through the excluded blocks; the route's own allow list decides."""
    glob = IpRules(("192.168.1.30-50",), ("192.168.1.1-100",), True)
    route = IpRules(("192.168.1.10",), (), False)
    rules = effective(route, glob)
    assert rules is route
    assert IpPolicy(rules).admits("192.168.1.10")
    assert not IpPolicy(rules).admits("192.168.1.35")  # global's allow list is gone too


def test_a_route_without_addresses_takes_the_global_rules() -> None:
    """Should_create_global_security_config: even a route's ExcludeAllowedFromBlocked
    alone does not make its options non-empty."""
    glob = IpRules(("127.0.0.1", "192.168.1.1"), ("127.0.0.1", "192.168.1.1"))
    assert effective(IpRules((), (), True), glob) is glob
    assert effective(None, glob) is glob
    assert effective(None, None) is None
    assert effective(IpRules(), IpRules()) is None


def test_one_address_in_both_lists_is_blocked_unless_excluded() -> None:
    """Should_create_route_security_config lists the same addresses in both lists."""
    both = ("127.0.0.1", "192.168.1.1")
    assert not IpPolicy(IpRules(both, both, False)).admits("192.168.1.1")
    assert IpPolicy(IpRules(both, both, True)).admits("192.168.1.1")
    assert not IpPolicy(IpRules(both, both, True)).admits("192.168.1.2")
