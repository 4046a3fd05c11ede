"""CORS settings, as every format writes them: origins, methods, headers, credentials,
max age, exposed headers. One set of checks for the native ``cors`` and the Ocelot-file
extension ``Cors``, and the one place a route's methods meet its CORS policy."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from propylon.config import values
from propylon.config.model import CorsPolicy

ANY = "*"
DEFAULT_METHODS = CorsPolicy(origins=()).methods
DEFAULT_HEADERS = CorsPolicy(origins=()).headers
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_DEFAULT_PORTS = {"http": "80", "https": "443"}

Report = Callable[[str, int | None, str], None]
"""(field, index in its list or None, message): an error at that key."""


@dataclass(frozen=True, slots=True)
class CorsInput:
    """The values as a file gave them; None where the file said nothing."""

    origins: Sequence[str]
    methods: Sequence[str] | None = None
    headers: Sequence[str] | None = None
    expose_headers: Sequence[str] = ()
    credentials: bool = False
    max_age: int | None = None


def origin(text: str) -> str:
    """A configured origin, normalised (lower case, no default port): ``*``, an exact origin
    ``scheme://host[:port]``, or a pattern with ``*.`` as its left-most host labels and/or
    ``*`` as its port. ValueError naming the problem otherwise."""
    given = text.strip()
    if given == ANY:
        return ANY
    lower = given.lower()
    if lower == "null":
        raise ValueError(
            "'null' is the origin of sandboxed frames, local files and redirected requests: "
            "any page can produce it, so it cannot be allowed"
        )
    scheme, sep, authority = lower.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        raise ValueError(f"an origin is scheme://host[:port], got {given!r}")
    if authority.endswith("/") and "/" not in authority[:-1]:
        raise ValueError(
            f"an origin has no path, not even '/': did you mean {given.rstrip('/')!r}?"
        )
    if any(c in authority for c in "/?#@ ") or not authority:
        raise ValueError(
            f"an origin is scheme://host[:port] (no path, query or user), got {given!r}"
        )
    host, colon, port = authority.rpartition(":")
    if not colon or "]" in port:
        host, port = authority, ""
    if port and port != ANY:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{given!r}: the port must be 1-65535 or *")
        if _DEFAULT_PORTS.get(scheme) == port:
            port = ""  # browsers never send a default port
    bare = host[2:] if host.startswith("*.") else host
    if "*" in bare:
        raise ValueError(
            f"{given!r}: '*' may only stand for the left-most host labels "
            "(https://*.example.com) or for the port (http://localhost:*)"
        )
    values.host_name(bare)
    if host.startswith("*.") and bare.count(".") < 1:
        raise ValueError(
            f"{given!r} would allow every host under a top-level domain; name at least two "
            "labels after '*.'"
        )
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def cors_policy(given: CorsInput, report: Report, warn: Report) -> CorsPolicy | None:
    """The checked policy, or None when ``report`` was called."""
    failed = False

    def error(field: str, index: int | None, message: str) -> None:
        nonlocal failed
        failed = True
        report(field, index, message)

    origins: list[str] = []
    if not given.origins:
        error("origins", None, "at least one origin (or '*') is required")
    for i, text in enumerate(given.origins):
        try:
            origins.append(origin(text))
        except ValueError as exc:
            error("origins", i, str(exc))
    if ANY in origins:
        if given.credentials:
            error(
                "origins",
                origins.index(ANY),
                "'*' with credentials would let every site read answers meant for the "
                "signed-in user; list the origins instead",
            )
        elif len(origins) > 1:
            warn("origins", None, "'*' allows every origin; the other entries add nothing")
    methods = _list(given.methods, "methods", values.http_method, error)
    if given.methods is not None and not given.methods:
        error("methods", None, "an empty list allows no method; leave it out for the default")
    headers = _list(given.headers, "headers", values.header_name, error)
    expose = _list(given.expose_headers, "expose_headers", values.header_name, error)
    if expose is not None and ANY in expose and given.credentials:
        error(
            "expose_headers",
            expose.index(ANY),
            "browsers read '*' literally when credentials are allowed; name the headers",
        )
    if given.max_age is not None and given.max_age < 0:
        error("max_age", None, f"must be 0 or more seconds, got {given.max_age}")
    if failed:
        return None
    return CorsPolicy(
        origins=tuple(dict.fromkeys(origins)),
        methods=tuple(methods) if methods is not None else (),
        headers=tuple(headers) if headers is not None else DEFAULT_HEADERS,
        expose_headers=tuple(expose or ()),
        credentials=given.credentials,
        max_age=given.max_age,
    )


def _list(
    items: Sequence[str] | None,
    field: str,
    check: Callable[[str], str],
    error: Report,
) -> list[str] | None:
    if items is None:
        return None
    out: list[str] = []
    for i, item in enumerate(items):
        if item.strip() == ANY:
            out.append(ANY)
            continue
        try:
            out.append(check(item.strip()))
        except ValueError as exc:
            error(field, i, str(exc))
    return out


def attach(
    methods: frozenset[str], policy: CorsPolicy | None
) -> tuple[frozenset[str], CorsPolicy | None]:
    """A route's methods and CORS policy, made to fit: preflights are ``OPTIONS`` requests,
    so a route that lists methods but not ``OPTIONS`` matches it too, and its policy answers
    any other ``OPTIONS`` with 405 (``route_methods``). Methods the policy leaves open
    default to the route's own (without ``OPTIONS``), else to the common set."""
    if policy is None:
        return methods, None
    allowed = policy.methods
    if not allowed:
        own = tuple(sorted(methods - {"OPTIONS"}))
        allowed = own if own else DEFAULT_METHODS
    route_methods = methods if methods and "OPTIONS" not in methods else None
    fitted = CorsPolicy(
        origins=policy.origins,
        methods=allowed,
        headers=policy.headers,
        expose_headers=policy.expose_headers,
        credentials=policy.credentials,
        max_age=policy.max_age,
        route_methods=route_methods,
    )
    return (methods | {"OPTIONS"} if route_methods else methods), fitted
