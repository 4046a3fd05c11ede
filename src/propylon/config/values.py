"""Checks for values every format shares: methods, hosts, ports, header names, CIDRs, URLs.

Each check returns the normalised value or raises ValueError with a message meant for the
person editing the file.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from propylon.config.model import DownstreamHost
from propylon.http.cidr import AddressRange, parse_range

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
"""Methods a route may name. TRACE and CONNECT are refused: a gateway has no business
reflecting requests (cross-site tracing) or opening raw tunnels to internal hosts."""

SCHEMES = {"http": 80, "https": 443}

_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

FORBIDDEN_IDENTITY_HEADERS = frozenset(
    {
        # hop-by-hop (RFC 9110 s.7.6.1) and framing: setting these would break the exchange
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
        "expect",
        # headers the gateway itself owns or the upstream relies on for other meanings
        "authorization",
        "cookie",
        "content-type",
        "content-encoding",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
        # the signed hop's header: only the gateway's assertion stage writes it
        "x-gateway-assertion",
    }
)


def http_method(name: str) -> str:
    upper = name.strip().upper()
    if upper in {"TRACE", "CONNECT"}:
        raise ValueError(f"method {upper} is not proxied by propylon")
    if upper not in METHODS:
        raise ValueError(f"unknown HTTP method {name!r}; use one of {', '.join(sorted(METHODS))}")
    return upper


def scheme(name: str) -> str:
    lower = name.strip().lower()
    if lower in {"ws", "wss"}:
        raise ValueError(
            f"scheme {name!r} is not supported; use "
            f"{'https' if lower == 'wss' else 'http'} (upgrade requests are proxied on it)"
        )
    if lower not in SCHEMES:
        raise ValueError(f"scheme must be http or https, got {name!r}")
    return lower


def host_name(text: str) -> str:
    if not text:
        raise ValueError("host must not be empty")
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.IPv6Address(bare))
    except ValueError:
        pass
    if "://" in text or "/" in text:
        raise ValueError(f"host must be a bare host name, not a URL or path: {text!r}")
    if ":" in text:
        raise ValueError(f"host must not include a port: {text!r}")
    if len(text) > 253 or not _HOST_NAME.fullmatch(text):
        raise ValueError(f"not a valid host name: {text!r}")
    return text


def port(number: int) -> int:
    if not 1 <= number <= 65535:
        raise ValueError(f"port must be 1-65535, got {number}")
    return number


def host_and_port(text: str, default_port: int) -> DownstreamHost:
    """``name``, ``name:port``, ``1.2.3.4:port``, ``[::1]:port`` or a bare IPv6 address."""
    text = text.strip()
    if "://" in text:
        raise ValueError(f"write host:port without a scheme, got {text!r}")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"expected ':port' after ']' in {text!r}")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if port_text and not port_text.isdigit():
        raise ValueError(f"port must be a number in {text!r}")
    return DownstreamHost(host_name(host), port(int(port_text)) if port_text else default_port)


def upstream_host(text: str) -> str:
    """Ocelot ``UpstreamHost``: a host name, optionally with ``:port``."""
    parsed = host_and_port(text, 0)
    return text.strip() if parsed.port else parsed.host


def header_name(text: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise ValueError(f"not a valid header name (RFC 9110 token): {text!r}")
    return text


def identity_header(text: str) -> str:
    header_name(text)
    if text.lower() in FORBIDDEN_IDENTITY_HEADERS:
        raise ValueError(
            f"{text!r} cannot carry the caller's identity: it is a "
            "hop-by-hop, framing or gateway-owned header"
        )
    return text


def cidr(text: str) -> str:
    """An entry of an address list (``trusted_proxies``, ``stats.allow_cidrs``, IP rules):
    an address, a CIDR network, an IPv4 ``address/mask`` or a range, read by the same
    parser that judges clients (``http.cidr``). A network with host bits set is refused:
    ``10.0.0.1/8`` is most likely a typo for an address or for ``10.0.0.0/8``."""
    span = address_range(text)
    if span.host_bits:
        raise ValueError(f"{text.strip()!r} has host bits set; did you mean {span}?")
    return str(span)


def address_range(text: str) -> AddressRange:
    """``text`` parsed as an address-list entry (host bits tolerated); ValueError, naming
    the entry and the problem, if not."""
    return parse_range(text)


def http_url(text: str, *, what: str = "URL") -> SplitResult:
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"not a valid {what}: {text!r} ({exc})") from None
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(f"{what} must start with http:// or https://, got {text!r}")
    if not parts.hostname:
        raise ValueError(f"{what} has no host: {text!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not contain credentials: {text!r}")
    if parts.fragment:
        raise ValueError(f"{what} must not contain a #fragment: {text!r}")
    host_name(parts.hostname)
    return parts


def timeout(seconds: float) -> float:
    if seconds != seconds or seconds <= 0 or seconds == float("inf"):
        raise ValueError(f"timeout must be a positive number of seconds, got {seconds}")
    return float(seconds)
