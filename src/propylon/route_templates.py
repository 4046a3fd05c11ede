"""Ocelot-style route templates and host constraints, taken apart before anything is compiled.

The syntax (Ocelot's routing documentation, "Placeholders", "Empty Placeholders", "Catch All",
"Priority", "Upstream Host", "Query Placeholders"), as read here; ``propylon.routing`` says how a
parsed template matches a request:

- ``{name}`` is a placeholder; several may share a path segment when literal text separates
  them (``/{a}-{b}``, Ocelot's "embedded placeholders"). No name may appear twice.
- A placeholder that ends the path template is its catch-all. A trailing ``/`` is remembered,
  not kept as an empty segment; other empty segments and dot segments are refused, since no
  canonical path has them.
- After ``?`` come ``&``-separated query items (``/a?unitId={uid}``); a query that is one
  placeholder (``/a?{q}``) is the query catch-all.
- ``UpstreamHost`` is compared case-insensitively, and the request's port is ignored unless the
  configured host names one: ``split_host`` reads a ``Host`` header and the config alike.
- Order (``route_rank``): routes with an ``UpstreamHost`` beat every route without one; then
  higher ``priority``; then file order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias, TypeGuard

from propylon.config.model import RouteSpec

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"[^{}/?&=#\s]+")


class RouteTemplateError(ValueError):
    """A route's template cannot be compiled (the message says why; no request is involved)."""


# -- templates --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str


Part: TypeAlias = str | Placeholder
Segment: TypeAlias = tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class UpstreamTemplate:
    """An Ocelot ``UpstreamPathTemplate`` taken apart; see the module docstring for meaning."""

    segments: tuple[Segment, ...]
    """Path segments, without the empty one a trailing slash would add. ``/`` has none."""
    trailing_slash: bool
    catch_all: str | None
    """The placeholder ending the path template, which captures the rest of the path."""
    query: tuple[Segment, ...] | None
    """``&``-separated items after ``?``, or None when the template has no ``?``."""
    query_catch_all: str | None

    @property
    def names(self) -> tuple[str, ...]:
        """Every placeholder name, path first, in template order."""
        items = (*self.segments, *(self.query or ()))
        return tuple(p.name for item in items for p in item if _ph(p))

    @property
    def query_names(self) -> tuple[str, ...]:
        return tuple(p.name for item in self.query or () for p in item if _ph(p))

    @property
    def whole_query_items(self) -> dict[str, int]:
        """Query items that are one placeholder: its name and the item's position."""
        return {
            item[0].name: i
            for i, item in enumerate(self.query or ())
            if len(item) == 1 and _ph(item[0])
        }

    @property
    def whole_segment_names(self) -> frozenset[str]:
        """Placeholders that are a whole path segment: their values are never dot segments."""
        return frozenset(s[0].name for s in self.segments if len(s) == 1 and _ph(s[0]))


def _ph(part: Part) -> TypeGuard[Placeholder]:
    return isinstance(part, Placeholder)


def split_parts(text: str) -> Segment:
    """``text`` as literal strings and placeholders."""
    parts: list[Part] = []
    position = 0
    for found in _PLACEHOLDER.finditer(text):
        literal = text[position : found.start()]
        if literal:
            parts.append(literal)
        elif parts:
            raise RouteTemplateError(f"adjacent placeholders in {text!r} cannot be told apart")
        if _NAME.fullmatch(found.group(1)) is None:
            raise RouteTemplateError(f"bad placeholder name {found.group(0)!r}")
        parts.append(Placeholder(found.group(1)))
        position = found.end()
    if position < len(text):
        parts.append(text[position:])
    if any(isinstance(p, str) and ("{" in p or "}" in p) for p in parts):
        raise RouteTemplateError(f"unbalanced brace in {text!r}")
    return tuple(parts)


def parse_upstream_template(text: str) -> UpstreamTemplate:
    path, has_query, query = text.partition("?")
    if not path.startswith("/"):
        raise RouteTemplateError(f"template {text!r} does not start with '/'")
    trailing = path.endswith("/") and len(path) > 1
    body = path[1:-1] if trailing else path[1:]
    segments = tuple(split_parts(s) for s in body.split("/")) if body else ()
    if any(not s or s in ((".",), ("..",)) for s in segments):
        raise RouteTemplateError(f"template {text!r} has an empty or dot segment: never matches")
    catch_all = None
    if segments and not trailing and isinstance(segments[-1][-1], Placeholder):
        catch_all = segments[-1][-1].name
    items = tuple(split_parts(i) for i in query.split("&") if i) if has_query else None
    query_catch_all = None
    if items is not None and len(items) == 1 and len(items[0]) == 1:
        first = items[0][0]
        query_catch_all = first.name if isinstance(first, Placeholder) else None
    template = UpstreamTemplate(
        segments, trailing or path == "/", catch_all, items, query_catch_all
    )
    names = template.names
    if len(set(names)) != len(names):
        raise RouteTemplateError(f"template {text!r} repeats a placeholder name")
    return template


# -- hosts and order --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostConstraint:
    """An ``UpstreamHost``: lower-case host, and the port only when the config names one."""

    host: str
    port: str | None

    def covers(self, other: HostConstraint) -> bool:
        return self.host == other.host and (self.port is None or self.port == other.port)

    @property
    def key(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def split_host(value: str) -> HostConstraint:
    """A ``Host`` header value (or a configured ``UpstreamHost``) as host and optional port."""
    text = value.strip().lower()
    if text.startswith("[") and "]" in text:
        end = text.index("]") + 1
        host, rest = text[:end], text[end:]
        return HostConstraint(host, rest[1:] if rest.startswith(":") and rest[1:] else None)
    host, _, port = text.partition(":")
    return HostConstraint(host, port or None)


def route_rank(spec: RouteSpec, index: int) -> tuple[int, int, int]:
    """Sort key: the first of several matching routes is the one that serves the request."""
    return (0 if spec.upstream_host else 1, -spec.priority, index)
