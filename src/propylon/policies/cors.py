"""Cross-origin rules of one route: which origins a browser may call it from, and the
``Access-Control-*`` header lines the answers carry (the Fetch standard's CORS protocol).

Built once per route from its ``CorsPolicy``; per request it matches the ``Origin`` and
hands back precomputed lines. Two rules hold whatever the config says (the readers refuse
configs that ask otherwise):

- ``Access-Control-Allow-Credentials: true`` only ever goes with one origin that matched an
  exact entry or a pattern: never with ``*``, never with an origin merely echoed back;
- every answer that depends on the origin says ``Vary: Origin``, so a cache never serves
  one origin's answer to another.
"""

from __future__ import annotations

import re
from typing import Final

from propylon.config.model import CorsPolicy

ANY: Final = "*"
VARY_ORIGIN: Final = b"Vary: Origin"
VARY_PREFLIGHT: Final = (
    b"Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
)
ORIGIN_CACHE_SIZE: Final = 256
_LABEL: Final = rb"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


def origin_pattern(pattern: str) -> re.Pattern[bytes]:
    """A configured origin with ``*`` as its left-most host labels (``https://*.example.com``:
    one or more labels) and/or as its port (``http://localhost:*``: any port or none), as a
    regular expression over the lower-case ``Origin`` header. The config reader has checked
    its shape."""
    scheme, _, authority = pattern.lower().partition("://")
    host, colon, port = authority.rpartition(":")
    if not colon or "]" in port:  # no port, or the end of an IPv6 literal
        host, port = authority, ""
    parts = [re.escape(scheme.encode("ascii")), rb"://"]
    if host.startswith("*."):
        parts.append(rb"(?:" + _LABEL + rb"\.)+")
        host = host[2:]
    parts.append(re.escape(host.encode("ascii")))
    if port == ANY:
        parts.append(rb"(?::[0-9]{1,5})?")
    elif port:
        parts.append(b":" + re.escape(port.encode("ascii")))
    return re.compile(b"".join(parts))


def _line(name: str, values: tuple[str, ...]) -> bytes:
    return f"{name}: {', '.join(values)}".encode("latin-1")


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip().lower() for token in value.split(b",") if token.strip()]


class CorsRules:
    """One route's CORS answers."""

    __slots__ = (
        "_actual",
        "allow_headers_line",
        "any_headers",
        "any_methods",
        "any_origin",
        "credentials",
        "exact",
        "expose_line",
        "headers",
        "max_age_line",
        "methods",
        "methods_line",
        "patterns",
        "route_methods",
    )

    def __init__(self, policy: CorsPolicy) -> None:
        origins = policy.origins
        self.any_origin: Final = ANY in origins
        self.exact: Final = frozenset(
            o.lower().encode("ascii") for o in origins if o != ANY and "*" not in o
        )
        self.patterns: Final = tuple(origin_pattern(o) for o in origins if o != ANY and "*" in o)
        self.credentials: Final = policy.credentials
        self.any_methods: Final = ANY in policy.methods
        self.methods: Final = frozenset(m.encode("ascii") for m in policy.methods)
        self.methods_line: Final = _line("Access-Control-Allow-Methods", policy.methods)
        self.any_headers: Final = ANY in policy.headers
        self.headers: Final = frozenset(h.lower().encode("ascii") for h in policy.headers)
        self.allow_headers_line: Final = _line("Access-Control-Allow-Headers", policy.headers)
        self.expose_line: Final = (
            _line("Access-Control-Expose-Headers", policy.expose_headers)
            if policy.expose_headers
            else None
        )
        self.max_age_line: Final = (
            f"Access-Control-Max-Age: {policy.max_age}".encode("ascii")
            if policy.max_age is not None
            else None
        )
        self.route_methods: Final = (
            ", ".join(sorted(policy.route_methods)) if policy.route_methods is not None else None
        )
        """The ``Allow`` value for an ``OPTIONS`` request that is not a preflight, when the
        route does not serve ``OPTIONS`` itself."""
        self._actual: dict[bytes, tuple[bytes, ...]] = {}

    @property
    def varies(self) -> bool:
        """Whether answers depend on the ``Origin`` (always, unless any origin is allowed)."""
        return not self.any_origin

    def allows(self, origin: bytes) -> bool:
        if self.any_origin or origin in self.exact:
            return True  # browsers send origins in lower case: no lower() needed then
        lower = origin.lower()
        if lower in self.exact:
            return True
        return any(pattern.fullmatch(lower) for pattern in self.patterns)

    def _allow_origin(self, origin: bytes) -> bytes:
        # With credentials the origin is named (the Fetch standard ignores "*" then); the
        # reader never lets "*" and credentials meet, so what is named here matched a rule.
        if self.any_origin:
            return b"Access-Control-Allow-Origin: *"
        return b"Access-Control-Allow-Origin: " + origin

    def actual(self, origin: bytes) -> tuple[bytes, ...]:
        """Lines for the response to an allowed origin's actual (non-preflight) request,
        built once per origin (the cache holds only allowed origins, at most
        ``ORIGIN_CACHE_SIZE`` of them, and starts over when full)."""
        cached = self._actual.get(origin)
        if cached is not None:
            return cached
        lines = [self._allow_origin(origin)]
        if self.credentials:
            lines.append(b"Access-Control-Allow-Credentials: true")
        if self.expose_line is not None:
            lines.append(self.expose_line)
        if not self.any_origin:
            lines.append(VARY_ORIGIN)
        built = tuple(lines)
        if len(self._actual) >= ORIGIN_CACHE_SIZE:
            self._actual.clear()
        self._actual[origin] = built
        return built

    def preflight(
        self, origin: bytes, method: bytes, request_headers: bytes | None
    ) -> list[bytes] | None:
        """Lines of the answer to a preflight, or None when it must be refused: the origin,
        the method it announces or one of the headers it announces is not allowed."""
        if not self.allows(origin):
            return None
        if not self.any_methods and method not in self.methods:
            return None
        asked = _tokens(request_headers) if request_headers else []
        if not self.any_headers:
            for name in asked:
                if name not in self.headers:
                    return None
        lines = [self._allow_origin(origin)]
        if self.credentials:
            lines.append(b"Access-Control-Allow-Credentials: true")
        # "*" is a wildcard for browsers only without credentials: name what was asked.
        lines.append(
            b"Access-Control-Allow-Methods: " + method if self.any_methods else self.methods_line
        )
        if self.any_headers:
            if asked:
                lines.append(b"Access-Control-Allow-Headers: " + b", ".join(asked))
        else:
            lines.append(self.allow_headers_line)
        if self.max_age_line is not None:
            lines.append(self.max_age_line)
        lines.append(VARY_PREFLIGHT)
        return lines
