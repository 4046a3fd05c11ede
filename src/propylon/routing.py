"""Route matching with Ocelot's semantics, compiled once so a request costs a dict lookup or one
regular-expression match. ``propylon.route_templates`` parses the templates and host constraints
and describes their syntax and the order routes are tried in.

How a parsed template matches (Ocelot's routing documentation), as implemented here:

- ``{name}`` matches one non-empty path segment (no ``/``), also beside literal text in the same
  segment. Matching is case-insensitive unless the route is case-sensitive
  (``RouteIsCaseSensitive``); captured values keep the request's case.
- The catch-all captures the rest of the path, ``/`` included, and may be empty. When it is a
  whole segment (``/invoices/{url}``) the template also matches the path without that segment:
  ``/invoices/`` and ``/invoices`` both match with ``url == ""``. ``/{everything}`` therefore
  matches every path.
- A template ending in ``/`` matches with or without the trailing slash (``/products/`` matches
  ``/products``); a template without one does not match a path with one (``/products`` does not
  match ``/products/``). Request paths are canonical already (``propylon.paths``).
- The downstream path is the downstream template with the values substituted. When it ends in
  ``/`` but the request path does not, the trailing slash is dropped, which is how
  ``/invoices`` reaches ``/api/invoices`` rather than ``/api/invoices/``.
- Of the routes that match, the first in ``route_rank`` order serves the request.
- Query placeholders: ``/a?unitId={uid}`` matches when the query string starts with
  ``unitId=``; ``/a?{q}`` (a query catch-all) matches any query or none, and ``{q}`` itself is
  always empty, as in Ocelot. A downstream template may carry a query (``/b?unit={uid}``).

What reaches the downstream's query, Ocelot's ``DownstreamUrlCreatorMiddleware`` rules (the
comparisons use the parameter's percent-decoded name; the bytes forwarded are the client's):

- No downstream template, or a route without placeholders whose downstream template has no
  ``?``: the query string unchanged.
- A route with placeholders whose downstream template has no ``?``: the query string without
  the parameters named like any placeholder, in any letter case (``?id=1`` on ``/{id}``).
- A downstream template with a ``?``: its parameters, values substituted, then the request's
  parameters in their order except those named exactly like a placeholder or like one of the
  template's parameters, and except the one an upstream query item that is one placeholder
  carried whole into the template (``{everything}`` in ``?a={a}&{everything}``): each other
  parameter goes once. Empty items (``&&``) are dropped. An item whose name comes from a value
  (a carried parameter) is left out when the template has a parameter of that name.

Only ``&`` separates parameters, as in Ocelot.

The downstream path never escapes its template: values come from the canonical path; a route
whose substitution could form a ``.``/``..`` segment is checked per request and does not match
if it would; a query value placed in the downstream path must be a safe single segment. A path
value placed in a downstream query has its query delimiters escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import Final, TypeAlias, TypeGuard
from urllib.parse import unquote_plus

from propylon.config.model import RouteSpec
from propylon.route_templates import (
    HostConstraint,
    Part,
    Placeholder,
    RouteTemplateError,
    Segment,
    UpstreamTemplate,
    parse_upstream_template,
    route_rank,
    split_host,
    split_parts,
)

_DOT_SEGMENT = re.compile(r"/\.\.?(?:[/;]|$)")
# A query value substituted into a downstream path: one segment, nothing a downstream could
# decode into a separator, a dot or a control character.
_SAFE_QUERY_VALUE = re.compile(
    r"(?:[A-Za-z0-9\-._~!$'()*+,;=:@]|%(?!2[EeFf]|5[Cc]|[01]|7[Ff])[0-9A-Fa-f]{2})*"
)
_EMPTY: Mapping[str, str] = MappingProxyType({})
_OTHER_METHOD = ""  # table key for a method no route names: only method-less routes apply


# -- template expressions ---------------------------------------------------------------------


def _path_regex(template: UpstreamTemplate) -> tuple[str, tuple[str, ...]]:
    """Regex source for the template's path (for ``fullmatch``) and the name of each group."""
    pieces: list[str] = []
    names: list[str] = []
    last = len(template.segments) - 1
    for i, segment in enumerate(template.segments):
        ends_with_catch_all = i == last and template.catch_all is not None
        if ends_with_catch_all and len(segment) == 1:
            pieces.append(r"(?:/|\Z)(.*)")  # always participates: "" when absent
            names.append(template.catch_all or "")
            break
        pieces.append("/")
        for j, part in enumerate(segment):
            if isinstance(part, str):
                pieces.append(re.escape(part))
                continue
            names.append(part.name)
            pieces.append("(.*)" if ends_with_catch_all and j == len(segment) - 1 else "([^/]+)")
    # Ocelot lets "/path/?query" match a query template too, so such paths take a slash.
    if template.trailing_slash or (template.query is not None and template.catch_all is None):
        pieces.append("/?")
    return "".join(pieces), tuple(names)


def _query_regex(items: tuple[Segment, ...]) -> str:
    """Regex source (for ``match``) of a query template: its items start the query string."""
    sources = (
        "".join(re.escape(p) if isinstance(p, str) else "([^&]*)" for p in item) for item in items
    )
    return "&".join(sources) + "(?:&|$)"


# -- downstream -------------------------------------------------------------------------------


_QUERY_DELIMITERS = str.maketrans({"&": "%26", ";": "%3B", "=": "%3D", "#": "%23", "+": "%2B"})

# How a route builds the downstream query (module docstring, "What reaches the downstream's
# query"); chosen when the route is compiled.
_QUERY_UNCHANGED: Final = 0
_QUERY_FILTERED: Final = 1
"""Without the parameters named like a placeholder, in any letter case."""
_QUERY_MERGED: Final = 2
"""The downstream template's parameters, then the request's that are not superseded."""


def _param_name(item: str) -> str:
    """A query item's parameter name as a server reads it: ``+`` a space, escapes decoded."""
    name = item.partition("=")[0]
    if "%" in name or "+" in name:
        return unquote_plus(name)
    return name


@dataclass(frozen=True, slots=True)
class _Downstream:
    """A route's downstream template, compiled: renders the request target from the values."""

    forward_prefix: str | None
    """Not None: no template; forward this prefix plus the canonical request path."""
    path_format: str
    """``str.format`` source with one field per ``path_names``; the literal path without any."""
    path_names: tuple[str, ...]
    query_mode: int = _QUERY_UNCHANGED
    query_items: tuple[Segment, ...] = ()
    """The downstream template's query items (``_QUERY_MERGED``)."""
    item_names: tuple[str | None, ...] = ()
    """Each item's decoded parameter name, or None when a placeholder is part of it."""
    carried: frozenset[int] = frozenset()
    """Items that are a request parameter carried whole: the value of an upstream query item
    that is one placeholder (``{everything}`` in ``?a={a}&{everything}``)."""
    carried_positions: frozenset[int] = frozenset()
    """Where in the request's query those parameters are: they are not appended again."""
    template_names: frozenset[str] = frozenset()
    """The names of the items without placeholders in their names: an item whose name comes
    from a value (a carried parameter) cannot add a second parameter of one of these names."""
    escaped_in_query: frozenset[str] = frozenset()
    """Path values: "&", ";", "=", "#" and "+" are escaped so that they cannot add or alter
    parameters (some parsers split on ";" too)."""
    dropped_params: frozenset[str] = frozenset()
    """Request parameters never forwarded: ``_QUERY_FILTERED``, the placeholder names in lower
    case; ``_QUERY_MERGED``, the placeholder names and the template's literal names."""
    dot_risk: bool = False
    """Some path segment is placeholders and dots only, and a value could be "." or ""."""
    query_values_in_path: tuple[str, ...] = ()

    def path(self, params: Mapping[str, str], request_path: str) -> str:
        if self.forward_prefix is not None:
            return self.forward_prefix + request_path
        if not self.path_names:
            out = self.path_format
        else:
            out = self.path_format.format(*[params[name] for name in self.path_names])
        if out[-1] == "/" and request_path[-1] != "/" and len(out) > 1:
            out = out.rstrip("/") or "/"
        return out

    def query(self, params: Mapping[str, str], query: str) -> str:
        """``"?" + query`` for the downstream, or "" when it has none."""
        if self.query_mode == _QUERY_FILTERED:
            return self._filtered(query)
        if self.query_mode == _QUERY_MERGED:
            return self._merged(params, query)
        return "?" + query if query else ""

    def _filtered(self, query: str) -> str:
        if not query:
            return ""
        dropped = self.dropped_params
        items = query.split("&")
        kept = [item for item in items if _param_name(item).lower() not in dropped]
        if len(kept) == len(items):
            return "?" + query
        rest = "&".join(kept)
        return "?" + rest if rest.strip("&") else ""

    def _merged(self, params: Mapping[str, str], query: str) -> str:
        out: list[str] = []
        rendered_names: set[str] | None = None
        for i, item in enumerate(self.query_items):
            rendered = "".join([self._render(p, params) for p in item])
            if not rendered:
                continue  # a placeholder-only item with an empty value
            if self.item_names[i] is None:
                name = _param_name(rendered)
                if name in self.template_names:
                    continue  # the template's own parameter of that name wins
                if i not in self.carried:
                    if rendered_names is None:
                        rendered_names = set()
                    rendered_names.add(name)
            out.append(rendered)
        if query:
            dropped = self.dropped_params
            carried = self.carried_positions
            for position, param in enumerate(query.split("&")):
                if not param or position in carried:
                    continue
                name = _param_name(param)
                if name in dropped or (rendered_names is not None and name in rendered_names):
                    continue
                out.append(param)
        return "?" + "&".join(out) if out else ""

    def _render(self, part: Part, params: Mapping[str, str]) -> str:
        if isinstance(part, str):
            return part
        value = params[part.name]
        if part.name in self.escaped_in_query:
            value = value.translate(_QUERY_DELIMITERS)
        return value

    def stays_inside(self, params: Mapping[str, str]) -> bool:
        """Whether these values keep the downstream path inside its template."""
        for name in self.query_values_in_path:
            if _SAFE_QUERY_VALUE.fullmatch(params[name]) is None:
                return False
        return not (self.dot_risk and _DOT_SEGMENT.search(self.path(params, "/")) is not None)


def _item_name(item: Segment) -> str | None:
    """The decoded parameter name of a downstream query item, when no placeholder is in it."""
    first = item[0]
    if isinstance(first, str) and "=" in first:
        return _param_name(first)
    if len(item) == 1 and isinstance(first, str):
        return _param_name(first)  # a parameter without "="
    return None


def _compile_downstream(
    spec: RouteSpec, upstream: UpstreamTemplate | None, group_names: frozenset[str]
) -> _Downstream:
    if spec.downstream_path is None:
        return _Downstream(spec.downstream_path_prefix, "", ())
    known = frozenset(upstream.names) if upstream is not None else group_names
    path, question_mark, query = spec.downstream_path.partition("?")
    if not path.startswith("/"):
        raise RouteTemplateError(f"downstream template {path!r} does not start with '/'")
    from_query = frozenset(upstream.query_names) if upstream is not None else frozenset()
    safe = upstream.whole_segment_names if upstream is not None else frozenset()
    pieces: list[str] = []
    path_names: list[str] = []
    dot_risk = False
    for raw_segment in path.split("/"):
        segment = split_parts(raw_segment)
        names = [p.name for p in segment if isinstance(p, Placeholder)]
        literal = "".join(p.replace("{", "{{").replace("}", "}}") for p in segment if _lit(p))
        if names and not literal.partition(";")[0].strip("."):
            dot_risk = dot_risk or len(segment) > 1 or names[0] not in safe
        path_names.extend(names)
        pieces.append("".join(p if isinstance(p, str) else "{}" for p in segment))
    items = tuple(split_parts(i) for i in query.split("&") if i)
    unknown = {*path_names, *_names_in(items)} - known
    if unknown:
        raise RouteTemplateError(f"downstream placeholders {sorted(unknown)} are not upstream")
    catch_all = upstream.query_catch_all if upstream is not None else None
    if catch_all is not None and catch_all in path_names:
        raise RouteTemplateError(f"query catch-all {{{catch_all}}} cannot go into a path")
    item_names = tuple(_item_name(item) for item in items)
    # A request parameter an upstream query item captured whole, placed whole downstream.
    whole = upstream.whole_query_items if upstream is not None and catch_all is None else {}
    carried: dict[int, int] = {}
    for i, item in enumerate(items):
        name = _whole(item)
        if name is not None and name in whole:
            carried[i] = whole[name]
    template_names = frozenset(n for n in item_names if n is not None)
    if question_mark:
        mode = _QUERY_MERGED
        dropped = known | template_names
    elif known:
        mode = _QUERY_FILTERED
        dropped = frozenset(n.lower() for n in known)
    else:
        mode = _QUERY_UNCHANGED
        dropped = frozenset()
    return _Downstream(
        forward_prefix=None,
        path_format="/".join(pieces) if path_names else path,
        path_names=tuple(path_names),
        query_mode=mode,
        query_items=items,
        item_names=item_names,
        carried=frozenset(carried),
        carried_positions=frozenset(carried.values()),
        template_names=template_names,
        escaped_in_query=known - from_query,
        dropped_params=dropped,
        dot_risk=dot_risk,
        query_values_in_path=tuple(n for n in path_names if n in from_query),
    )


def _whole(item: Segment) -> str | None:
    """The placeholder's name when the item is one placeholder and nothing else."""
    return item[0].name if len(item) == 1 and isinstance(item[0], Placeholder) else None


def _lit(part: Part) -> TypeGuard[str]:
    return isinstance(part, str)


def _names_in(items: Sequence[Segment]) -> list[str]:
    return [p.name for item in items for p in item if isinstance(p, Placeholder)]


# -- compiled routes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    index: int
    """Position in the config's routes tuple."""
    spec: RouteSpec
    rank: int
    """Position in match order (0 is tried first)."""
    template: UpstreamTemplate | None
    """None for a regular-expression route."""
    host: HostConstraint | None
    pattern: re.Pattern[str]
    """``fullmatch`` against the canonical path."""
    fragment: str
    """This route's alternative in a table's combined expression (template routes only)."""
    names: tuple[str, ...]
    """Placeholder name of each capture group in ``fragment``."""
    query_pattern: re.Pattern[str] | None
    checked: bool
    """A path match must also pass ``accepts`` (query template, downstream safety)."""
    downstream: _Downstream

    @property
    def is_static(self) -> bool:
        return self.template is not None and not self.names and not self.checked

    def downstream_target(self, params: Mapping[str, str], path: str, query: str) -> str:
        """The downstream request target: path (+ "?" + query when query is non-empty).
        `path` is the canonical request path (used when spec.downstream_path is None)."""
        downstream = self.downstream
        target = downstream.path(params, path)
        if downstream.query_mode == _QUERY_UNCHANGED:
            return f"{target}?{query}" if query else target
        return target + downstream.query(params, query)

    def path_params(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        if self.template is None:
            return {k: v or "" for k, v in found.groupdict().items()}
        # Indexing, not zip(..., strict=True): a call mypyc does not compile (~2,500
        # instructions); the pattern has one group per name by construction.
        groups = found.groups()
        return {name: groups[index] for index, name in enumerate(self.names)}

    def accepts(self, params: dict[str, str], query: str) -> bool:
        """Complete ``params`` from the query; check the downstream stays in its template."""
        template = self.template
        if self.query_pattern is not None and template is not None:
            found = self.query_pattern.match(query)
            if found is None:
                return False
            groups = found.groups()
            for index, name in enumerate(template.query_names):
                params[name] = groups[index] or ""
        if template is not None and template.query_catch_all is not None:
            params[template.query_catch_all] = ""  # Ocelot: the request's query is merged
        return self.downstream.stays_inside(params)


def compile_route(spec: RouteSpec, index: int, rank: int = 0) -> CompiledRoute:
    """Compile one route; ``RouteTemplateError`` says what is wrong with its templates."""
    flags = 0 if spec.case_sensitive else re.IGNORECASE
    template: UpstreamTemplate | None = None
    query_pattern: re.Pattern[str] | None = None
    names: tuple[str, ...] = ()
    fragment = ""
    if spec.path_is_regex:
        try:
            pattern = re.compile(spec.upstream_path, flags)
        except re.error as exc:
            raise RouteTemplateError(f"invalid regular expression: {exc}") from None
        group_names = frozenset(pattern.groupindex)
    else:
        template = parse_upstream_template(spec.upstream_path)
        source, names = _path_regex(template)
        fragment = source if spec.case_sensitive else f"(?i:{source})"
        pattern = re.compile(fragment)
        if template.query is not None and template.query_catch_all is None:
            query_pattern = re.compile(_query_regex(template.query), flags)
        group_names = frozenset()
    downstream = _compile_downstream(spec, template, group_names)
    return CompiledRoute(
        index=index,
        spec=spec,
        rank=rank,
        template=template,
        host=split_host(spec.upstream_host) if spec.upstream_host else None,
        pattern=pattern,
        fragment=fragment,
        names=names,
        query_pattern=query_pattern,
        checked=(
            downstream.dot_risk
            or bool(downstream.query_values_in_path)
            or (template is not None and template.query is not None)
        ),
        downstream=downstream,
    )


# -- results ----------------------------------------------------------------------------------


class RouteMatch:
    """The route that serves a path, and the placeholder values taken from it. A plain class
    with ``Final`` fields rather than a frozen dataclass: one is built per new request target,
    and a dataclass's generated ``__init__`` stays interpreted where this module is
    compiled."""

    __slots__ = ("params", "route")

    def __init__(self, route: CompiledRoute, params: Mapping[str, str]) -> None:
        self.route: Final = route
        self.params: Final = params

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RouteMatch):
            return NotImplemented
        return self.route is other.route and self.params == other.params

    __hash__ = None  # type: ignore[assignment]  # params is a mapping: not hashable

    def __repr__(self) -> str:
        return f"RouteMatch(route={self.route.index}, params={dict(self.params)!r})"

    def downstream_target(self, path: str, query: str) -> str:
        return self.route.downstream_target(self.params, path, query)


@dataclass(frozen=True, slots=True)
class NoRoute:
    pass


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    allowed: tuple[str, ...]


NO_ROUTE = NoRoute()


# -- tables -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StaticHit:
    rank: int
    match: RouteMatch
    final: bool
    """No better-ranked dynamic route of the table can match this path in any letter case."""


class _Alternatives:
    """Consecutive template routes (in rank order) as one expression: the first alternative
    that matches is the best-ranked route, found by the empty group closing it."""

    __slots__ = ("_pattern", "_slots", "first_rank", "routes")

    def __init__(self, routes: Sequence[CompiledRoute]) -> None:
        self.routes = tuple(routes)
        self.first_rank = routes[0].rank
        sources: list[str] = []
        self._slots: dict[int, tuple[int, tuple[int, ...]]] = {}
        group = 1
        for position, route in enumerate(routes):
            sources.append(f"(?:{route.fragment})()")
            groups = tuple(range(group, group + len(route.names)))
            group += len(route.names)
            self._slots[group] = (position, groups)
            group += 1
        self._pattern = re.compile("|".join(sources))

    def find(self, path: str, query: str, limit: int) -> RouteMatch | None:
        found = self._pattern.fullmatch(path)
        if found is None:
            return None
        position, groups = self._slots[found.lastindex or 0]
        route = self.routes[position]
        if route.rank > limit:
            return None
        # Every group of a template route participates, so no value is None.
        if not groups:
            params: dict[str, str] = {}
        elif len(groups) == 1:
            params = {route.names[0]: found.group(groups[0])}
        else:
            params = dict(zip(route.names, found.group(*groups)))  # noqa: B905 (same length)
        if not route.checked or route.accepts(params, query):
            return RouteMatch(route, params)
        # Rare: the path matched but the query or a downstream check did not; try the rest.
        return _scan(self.routes[position + 1 :], path, query, limit)


class _OneRoute:
    """A regular-expression route: its own groups, so never part of a combined expression."""

    __slots__ = ("first_rank", "routes")

    def __init__(self, route: CompiledRoute) -> None:
        self.routes = (route,)
        self.first_rank = route.rank

    def find(self, path: str, query: str, limit: int) -> RouteMatch | None:
        return _scan(self.routes, path, query, limit)


def _scan(routes: Sequence[CompiledRoute], path: str, query: str, limit: int) -> RouteMatch | None:
    for route in routes:
        if route.rank > limit:
            return None
        params = route.path_params(path)
        if params is not None and (not route.checked or route.accepts(params, query)):
            return RouteMatch(route, params)
    return None


def _static_keys(route: CompiledRoute) -> list[str]:
    assert route.template is not None
    text = route.spec.upstream_path
    keys = [text, text[:-1]] if route.template.trailing_slash and text != "/" else [text]
    return keys if route.spec.case_sensitive else [k.lower() for k in keys]


class _Table:
    """Every route that applies to one (method, host) combination, ready to match a path."""

    __slots__ = ("_ci", "_cs", "_steps", "routes")

    def __init__(self, routes: Sequence[CompiledRoute], static: Mapping[int, RouteMatch]) -> None:
        self.routes = tuple(routes)
        dynamic = [r for r in routes if not r.is_static]
        steps: list[_Alternatives | _OneRoute] = []
        run: list[CompiledRoute] = []
        for route in dynamic:
            if route.template is not None:
                run.append(route)
                continue
            if run:
                steps.append(_Alternatives(run))
                run = []
            steps.append(_OneRoute(route))
        if run:
            steps.append(_Alternatives(run))
        self._steps = tuple(steps)
        self._ci: dict[str, _StaticHit] = {}
        self._cs: dict[str, _StaticHit] = {}
        for route in routes:
            if not route.is_static:
                continue
            table = self._cs if route.spec.case_sensitive else self._ci
            for key in _static_keys(route):
                if key not in table:
                    final = not any(
                        d.rank < route.rank
                        and re.compile(d.pattern.pattern, d.pattern.flags | re.I).fullmatch(key)
                        for d in dynamic
                    )
                    table[key] = _StaticHit(route.rank, static[route.index], final)

    def find(self, path: str, query: str) -> RouteMatch | None:
        hit = self._ci.get(path.lower()) if self._ci else None
        if self._cs:
            exact = self._cs.get(path)
            if exact is not None and (hit is None or exact.rank < hit.rank):
                hit = exact
        if hit is not None and hit.final:
            return hit.match
        limit = hit.rank if hit is not None else 1 << 62
        for step in self._steps:
            if step.first_rank > limit:
                break
            found = step.find(path, query, limit)
            if found is not None:
                return found
        return hit.match if hit is not None else None


# -- the router -------------------------------------------------------------------------------

_HostKey: TypeAlias = tuple[str | None, str | None]
_NO_HOST: _HostKey = (None, None)


def _host_applies(constraint: HostConstraint | None, key: _HostKey) -> bool:
    if constraint is None:
        return True
    return key[0 if constraint.port is None else 1] == constraint.key


class Router:
    """All routes of a config, compiled. ``match`` is the per-request entry point."""

    routes: tuple[CompiledRoute, ...]
    """In config order: ``routes[i].index == i``."""

    def __init__(self, specs: Sequence[RouteSpec]) -> None:
        order = sorted(range(len(specs)), key=lambda i: route_rank(specs[i], i))
        rank = {index: position for position, index in enumerate(order)}
        compiled: list[CompiledRoute] = []
        for index, spec in enumerate(specs):
            try:
                compiled.append(compile_route(spec, index, rank[index]))
            except RouteTemplateError as exc:
                raise RouteTemplateError(f"{spec.source}: {exc}") from None
        self.routes = tuple(compiled)
        by_rank = sorted(self.routes, key=attrgetter("rank"))
        static = {r.index: RouteMatch(r, _EMPTY) for r in self.routes if r.is_static}
        hosts = [r.host for r in self.routes if r.host is not None]
        self._bare_hosts = frozenset(h.host for h in hosts if h.port is None)
        self._full_hosts = frozenset(h.key for h in hosts if h.port is not None)
        host_keys = {_NO_HOST, *((b, None) for b in self._bare_hosts)}
        for full in self._full_hosts:
            bare = split_host(full).host
            host_keys.add((bare if bare in self._bare_hosts else None, full))
        methods = sorted({m for r in self.routes for m in r.spec.methods})
        shared: dict[tuple[int, ...], _Table] = {}

        def table(routes: list[CompiledRoute]) -> _Table:
            key = tuple(r.index for r in routes)
            if key not in shared:
                shared[key] = _Table(routes, static)
            return shared[key]

        self._tables: dict[_HostKey, dict[str, _Table]] = {}
        self._any_method: dict[_HostKey, _Table] = {}
        for host_key in host_keys:
            hosted = [r for r in by_rank if _host_applies(r.host, host_key)]
            per_method = {
                m: table([r for r in hosted if not r.spec.methods or m in r.spec.methods])
                for m in methods
            }
            per_method[_OTHER_METHOD] = table([r for r in hosted if not r.spec.methods])
            self._tables[host_key] = per_method
            self._any_method[host_key] = table(hosted)
        self._host_aware = bool(hosts)
        self._default = self._tables[_NO_HOST]

    def match(
        self, method: str, host: str | None, path: str, query: str = ""
    ) -> RouteMatch | NoRoute | MethodNotAllowed:
        """Route a request. ``path`` is canonical; ``host`` is the raw ``Host`` value."""
        if self._host_aware:
            host_key = self._host_key(host)
            tables = self._tables[host_key]
        else:
            host_key = _NO_HOST
            tables = self._default
        table = tables.get(method) or tables[_OTHER_METHOD]
        found = table.find(path, query)
        if found is not None:
            return found
        return self._refusal(host_key, path, query)

    def _host_key(self, host: str | None) -> _HostKey:
        if host is None:
            return _NO_HOST
        parsed = split_host(host)
        full = parsed.key if parsed.port is not None else None
        return (
            parsed.host if parsed.host in self._bare_hosts else None,
            full if full in self._full_hosts else None,
        )

    def _refusal(self, host_key: _HostKey, path: str, query: str) -> NoRoute | MethodNotAllowed:
        table = self._any_method[host_key]
        if table.find(path, query) is None:
            return NO_ROUTE
        allowed: set[str] = set()
        for route in table.routes:
            params = route.path_params(path)
            if params is not None and (not route.checked or route.accepts(params, query)):
                allowed.update(route.spec.methods)
        return MethodNotAllowed(tuple(sorted(allowed))) if allowed else NO_ROUTE
