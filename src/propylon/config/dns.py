"""The resolver settings of DNS discovery: the native ``dns`` block, Ocelot's ``Dns``.

```yaml
dns:
  nameservers: [10.0.0.2, "127.0.0.1:5353", "[::1]:53"]   # default: the system's resolver
  interval: 10s        # re-resolve every (sooner when the records' TTL is shorter)
  min_interval: 1s     # but never more often than this
  timeout: 2s          # one resolution
  discovery: false     # true: every route's host names are discovered
```

Ocelot files take the same object as ``GlobalConfiguration.Dns`` (propylon's extension,
which Ocelot's binder ignores), in Ocelot's spelling: ``Nameservers``, ``Interval``,
``MinInterval``, ``Timeout`` (seconds, or text with a unit) and ``Discovery``. Every problem
names its key path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from propylon.config import durations
from propylon.config.diagnostics import Diagnostics, Loc, kind_of
from propylon.config.model import DnsSpec

NATIVE_KEYS = {
    "nameservers": "nameservers",
    "interval": "interval",
    "min_interval": "min_interval",
    "timeout": "timeout",
    "discovery": "discovery",
}
OCELOT_KEYS = {
    "Nameservers": "nameservers",
    "Interval": "interval",
    "MinInterval": "min_interval",
    "Timeout": "timeout",
    "Discovery": "discovery",
}
DNS_PORT = 53


def nameserver(text: object) -> tuple[str, int]:
    """``10.0.0.2``, ``10.0.0.2:5353``, ``::1`` or ``[::1]:5353`` -> (address, port)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"must be an IP address with an optional :port, got {text!r}")
    raw = text.strip()
    host, port = raw, DNS_PORT
    if raw.startswith("["):
        inside, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"must be [IPv6]:port, got {text!r}")
        host = inside
        if rest:
            port = _port(rest[1:], text)
    elif raw.count(":") == 1:
        host, _, number = raw.partition(":")
        port = _port(number, text)
    try:
        # A nameserver is an address: resolving the resolver's own name would need a resolver.
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"must be an IP address (not a name), got {text!r}") from None
    return address, port


def _port(number: str, text: object) -> int:
    if not number.isdigit() or not 0 < int(number) < 65536:
        raise ValueError(f"has no valid port (1-65535) in {text!r}")
    return int(number)


def _positive(value: object) -> float:
    seconds = durations.seconds(value)
    if seconds <= 0:
        raise ValueError(f"must be more than 0, got {value!r}")
    return seconds


def read_dns(
    raw: object, at: Loc, diag: Diagnostics, keys: Mapping[str, str] = NATIVE_KEYS
) -> DnsSpec:
    """The block at ``at`` (absent: the defaults); ``keys`` maps its spelling to ours."""
    if raw is None:
        return DnsSpec()
    if not isinstance(raw, Mapping):
        diag.error(at, f"must be an object, got {kind_of(raw)}")
        return DnsSpec()
    fields: dict[str, tuple[str, object]] = {}
    for key, value in raw.items():
        name = keys.get(str(key))
        if name is None:
            diag.error((*at, str(key)), f"unknown key; expected one of {', '.join(keys)}")
        else:
            fields[name] = (str(key), value)
    default = DnsSpec()
    servers: list[tuple[str, int]] = []
    if "nameservers" in fields:
        written, value = fields["nameservers"]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            diag.error((*at, written), "must list at least one nameserver address")
        else:
            for i, item in enumerate(value):
                try:
                    servers.append(nameserver(item))
                except ValueError as exc:
                    diag.error((*at, written, i), str(exc))
    seconds: dict[str, float] = {}
    for name in ("interval", "min_interval", "timeout"):
        if name in fields:
            written, value = fields[name]
            try:
                seconds[name] = _positive(value)
            except ValueError as exc:
                diag.error((*at, written), str(exc))
    discover_all = default.discover_all
    if "discovery" in fields:
        written, value = fields["discovery"]
        if isinstance(value, bool):
            discover_all = value
        else:
            diag.error((*at, written), f"must be true or false, got {kind_of(value)}")
    spec = DnsSpec(
        nameservers=tuple(servers),
        interval=seconds.get("interval", default.interval),
        min_interval=seconds.get("min_interval", default.min_interval),
        timeout=seconds.get("timeout", default.timeout),
        discover_all=discover_all,
    )
    if spec.min_interval > spec.interval:
        written = fields.get("min_interval", ("min_interval",))[0]
        diag.error((*at, written), f"must not exceed the interval ({spec.interval:g}s)")
    return spec


def route_discovery(raw: object, at: Loc, diag: Diagnostics, dns: DnsSpec) -> float | None:
    """A native route's ``downstream.discovery``: ``true``, ``false`` or ``{interval: 5s}``
    (absent: as ``dns.discovery`` says) -> its re-resolution interval, or None."""
    if raw is None:
        return dns.interval if dns.discover_all else None
    if isinstance(raw, bool):
        return dns.interval if raw else None
    if not isinstance(raw, Mapping):
        diag.error(at, f"must be true, false or {{interval: ...}}, got {kind_of(raw)}")
        return None
    interval = dns.interval
    for key, value in raw.items():
        if key != "interval":
            diag.error((*at, str(key)), "unknown key; expected interval")
            continue
        try:
            interval = _positive(value)
        except ValueError as exc:
            diag.error((*at, "interval"), str(exc))
            continue
        if interval < dns.min_interval:
            diag.error(
                (*at, "interval"), f"must not be below dns.min_interval ({dns.min_interval:g}s)"
            )
    return interval
