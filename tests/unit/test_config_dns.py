"""DNS discovery keys in both formats: defaults, values, the global switch, key paths."""

from __future__ import annotations

from pathlib import Path

from propylon.config.model import DnsSpec
from tests.unit.test_config_native import load as load_native
from tests.unit.test_config_native import problems as native_problems
from tests.unit.test_config_ocelot import load, problems, route, warnings

ROUTES = """
routes:
  - path: /a
    downstream: {hosts: ["profiles:8000", "10.0.0.9:8000"]%s}
  - path: /b
    downstream: {hosts: ["users:8000"]%s}
"""


def _routes(a: str = "", b: str = "") -> str:
    return ROUTES % (a, b)


def test_discovery_is_off_unless_asked(tmp_path: Path) -> None:
    config = load_native(tmp_path, "propylon: 1" + _routes())
    assert config.dns == DnsSpec()
    assert [r.discovery for r in config.routes] == [None, None]


def test_a_route_asks_with_true_or_its_own_interval(tmp_path: Path) -> None:
    text = "propylon: 1\ndns: {interval: 30s, min_interval: 2s}" + _routes(
        ", discovery: true", ", discovery: {interval: 5s}"
    )
    config = load_native(tmp_path, text)
    assert config.dns == DnsSpec(interval=30.0, min_interval=2.0)
    assert [r.discovery for r in config.routes] == [30.0, 5.0]


def test_the_global_switch_covers_every_route_that_does_not_say_otherwise(tmp_path: Path) -> None:
    text = (
        'propylon: 1\ndns: {discovery: true, nameservers: ["10.0.0.2", "127.0.0.1:5353",'
        ' "[::1]:54"], timeout: 500ms}' + _routes("", ", discovery: false")
    )
    config = load_native(tmp_path, text)
    assert config.dns.nameservers == (("10.0.0.2", 53), ("127.0.0.1", 5353), ("::1", 54))
    assert config.dns.timeout == 0.5 and config.dns.discover_all
    assert [r.discovery for r in config.routes] == [10.0, None]


def test_bad_dns_keys_are_named_by_their_path(tmp_path: Path) -> None:
    text = (
        'propylon: 1\ndns: {nameservers: ["dns.example", "1.2.3.4:99999"], interval: 0s,'
        " min_interval: 20s, discovery: sometimes, retries: 3}"
        + _routes(", discovery: {interval: 1ms, every: 2s}", ", discovery: 5")
    )
    assert native_problems(tmp_path, text) == [
        "dns.retries: error: unknown key; expected one of nameservers, interval, min_interval,"
        " timeout, discovery",
        "dns.nameservers[0]: error: must be an IP address (not a name), got 'dns.example'",
        "dns.nameservers[1]: error: has no valid port (1-65535) in '1.2.3.4:99999'",
        "dns.interval: error: must be more than 0, got '0s'",
        "dns.discovery: error: must be true or false, got a string",
        "dns.min_interval: error: must not exceed the interval (10s)",
        "routes[0].downstream.discovery.interval: error: must not be below dns.min_interval (20s)",
        "routes[0].downstream.discovery.every: error: unknown key; expected interval",
        "routes[1].downstream.discovery: error: must be true, false or {interval: ...}, got a"
        " number",
    ]


def test_ocelot_turns_discovery_on_globally_with_its_dns_extension(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "Routes": [route("/a"), route("/b")],
            "GlobalConfiguration": {
                "dns": {"Discovery": True, "Nameservers": ["127.0.0.1:5353"], "Interval": 5},
            },
        },
    )
    assert config.dns == DnsSpec(
        nameservers=(("127.0.0.1", 5353),), interval=5.0, discover_all=True
    )
    assert [r.discovery for r in config.routes] == [5.0, 5.0]
    assert warnings(config) == []


def test_ocelot_dns_problems_use_the_files_spelling(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "Routes": [route("/a")],
            "GlobalConfiguration": {"Dns": {"Nameservers": ["nameserver"], "MinInterval": 0}},
        },
    )
    assert found == [
        "GlobalConfiguration.Dns.Nameservers[0]: error: must be an IP address (not a name),"
        " got 'nameserver'",
        "GlobalConfiguration.Dns.MinInterval: error: must be more than 0, got 0",
    ]
