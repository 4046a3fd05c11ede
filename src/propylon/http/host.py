"""The ``Host`` header: checked against RFC 9112 s.3.2 / RFC 3986 s.3.2.2, normalised once.

A Host that is not ``host[:port]`` (a reg-name, an IPv4 address or a bracketed IPv6
literal) is refused: it is sent on as ``X-Forwarded-Host`` and services build redirects and
links from it. A trailing dot (the absolute DNS form, ``api.example.com.``) is removed, so
it matches the route's ``UpstreamHost`` as the same name does without it.

Clients send the same few hosts over and over, so accepted values are remembered (bounded):
a repeated Host costs one dict lookup.
"""

from __future__ import annotations

import ipaddress
import re

MAX_HOST_BYTES = 255 + 6  # a DNS name's limit, and ":65535"
REMEMBERED = 256

_HOST = re.compile(
    rb"(?:(\[[0-9A-Fa-f:.]+\])|((?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*))"
    rb"(?::([0-9]{1,5}))?"
)


class HostRejected(ValueError):
    """Not an acceptable Host (-> 400)."""


class HostCheck:
    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[bytes, bytes] = {}

    def normalise(self, value: bytes) -> bytes:
        """``value`` as the gateway uses it from now on, or HostRejected."""
        known = self._known.get(value)
        if known is not None:
            return known
        host = _checked(value)
        if len(self._known) >= REMEMBERED:
            self._known.clear()
        self._known[value] = host
        return host


def _checked(value: bytes) -> bytes:
    if len(value) > MAX_HOST_BYTES:
        raise HostRejected("host too long")
    found = _HOST.fullmatch(value)
    if found is None:
        raise HostRejected("not host[:port]")
    literal, name, port = found.groups()
    if port is not None and int(port) > 65535:
        raise HostRejected("port out of range")
    if literal is not None:
        try:
            ipaddress.IPv6Address(literal[1:-1].decode("ascii"))
        except ValueError:
            raise HostRejected("bad IPv6 literal") from None
        return value
    if name.endswith(b".") and name != b".":
        name = name[:-1]
        return name if port is None else name + b":" + port
    return value
