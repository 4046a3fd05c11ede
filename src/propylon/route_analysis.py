"""Routes that can never match, found before the gateway starts (``propylon check``).

A route is unreachable for a request when a route ranked before it (see
``route_templates.route_rank``: host-bound first, then priority, then file order) matches the same
request. This module proves that structurally, on template segments, for whole routes:

- an exact duplicate (same template up to placeholder names, and up to letter case when
  matching is case-insensitive; same host; overlapping methods) is an error;
- a route every request of which a better-ranked route also matches, for each of its methods,
  is shadowed: a warning. A catch-all covers everything under its prefix, a placeholder segment
  covers any one segment, a literal segment covers only itself; a regular-expression route is
  only compared for exact duplicates. When in doubt, nothing is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from propylon.config.model import Problem, RouteSpec
from propylon.route_templates import (
    HostConstraint,
    Placeholder,
    RouteTemplateError,
    Segment,
    UpstreamTemplate,
    route_rank,
)
from propylon.routing import compile_route

__all__ = ["find_conflicts"]


@dataclass(frozen=True, slots=True)
class _Route:
    index: int
    spec: RouteSpec
    template: UpstreamTemplate | None
    host: HostConstraint | None

    @property
    def named(self) -> str:
        return f"{self.spec.source} ({self.spec.label})"


def find_conflicts(routes: Sequence[RouteSpec], file: str) -> list[Problem]:
    """Problems for routes that cannot compile or can never match, in file order."""
    found: list[tuple[int, Problem]] = []
    ranked: list[_Route] = []
    for index, spec in enumerate(routes):
        try:
            compiled = compile_route(spec, index)
        except RouteTemplateError as exc:
            found.append((index, Problem(file, spec.source, f"invalid route template: {exc}")))
            continue
        ranked.append(_Route(index, spec, compiled.template, compiled.host))
    ranked.sort(key=lambda r: route_rank(r.spec, r.index))
    for position, route in enumerate(ranked):
        before = ranked[:position]
        problem = _duplicate(route, before, file) or _shadowed(route, before, file)
        if problem is not None:
            found.append((route.index, problem))
    return [problem for _, problem in sorted(found, key=lambda item: item[0])]


def _duplicate(route: _Route, before: Sequence[_Route], file: str) -> Problem | None:
    for winner in before:
        if winner.host != route.host or not _same_matcher(winner, route):
            continue
        methods, other = route.spec.methods, winner.spec.methods
        if methods and other and not methods & other:
            continue
        shared = sorted(methods & other if methods and other else methods or other)
        which = ", ".join(shared) if shared else "every method"
        return Problem(
            file,
            route.spec.source,
            f"duplicate of {winner.named} for {which}: that route is always chosen first",
        )
    return None


def _shadowed(route: _Route, before: Sequence[_Route], file: str) -> Problem | None:
    if route.template is None:
        return None
    covering = [w for w in before if _host_covers(w.host, route.host) and _path_covers(w, route)]
    winners: list[_Route] = []
    methods: list[str | None] = [*sorted(route.spec.methods)] or [None]
    for method in methods:
        winner = next((w for w in covering if _accepts(w.spec, method)), None)
        if winner is None:
            return None
        if winner not in winners:
            winners.append(winner)
    names = ", ".join(w.named for w in winners)
    verb = "matches" if len(winners) == 1 else "match"
    return Problem(
        file,
        route.spec.source,
        f"never matches: {names} {verb} every request it would and is chosen first",
        severity="warning",
    )


def _accepts(spec: RouteSpec, method: str | None) -> bool:
    """Whether ``spec`` takes ``method`` (None: every method)."""
    return not spec.methods or (method is not None and method in spec.methods)


def _host_covers(winner: HostConstraint | None, route: HostConstraint | None) -> bool:
    if winner is None or route is None:
        return winner is None and route is None
    return winner.covers(route)


def _same_matcher(a: _Route, b: _Route) -> bool:
    """Same template up to placeholder names (and case, when case-insensitive), or the same
    regular expression."""
    case_sensitive = a.spec.case_sensitive
    if case_sensitive != b.spec.case_sensitive or a.spec.path_is_regex != b.spec.path_is_regex:
        return False
    if a.template is None or b.template is None:
        return a.spec.upstream_path == b.spec.upstream_path
    return _shape(a.template, case_sensitive) == _shape(b.template, case_sensitive)


def _shape(template: UpstreamTemplate, case_sensitive: bool) -> tuple[object, ...]:
    def segment(parts: Segment) -> tuple[str | None, ...]:
        return tuple(
            None if isinstance(p, Placeholder) else p if case_sensitive else p.lower()
            for p in parts
        )

    query = None if template.query is None else tuple(segment(i) for i in template.query)
    return (tuple(segment(s) for s in template.segments), template.trailing_slash, query)


# -- structural coverage ----------------------------------------------------------------------


def _path_covers(winner: _Route, route: _Route) -> bool:
    """Whether every path (and query) ``route`` matches is matched by ``winner`` too."""
    a, b = winner.template, route.template
    if a is None or b is None:
        return False
    a_cs, b_cs = winner.spec.case_sensitive, route.spec.case_sensitive

    def covers(x: Segment, y: Segment) -> bool:
        return _segment_covers(x, a_cs, y, b_cs)

    if a.query is not None and (
        b.query is None
        or len(a.query) != len(b.query)
        or not all(_same_parts(x, a_cs, y, b_cs) for x, y in zip(a.query, b.query, strict=True))
    ):
        return False
    b_rest = len(b.segments) - 1 if b.catch_all is not None else len(b.segments)
    if a.catch_all is not None:
        if len(a.segments[-1]) != 1:  # "x{rest}": only an identical shape is certain
            return _same_matcher(winner, route)
        fixed = len(a.segments) - 1
        return b_rest >= fixed and all(map(covers, a.segments[:fixed], b.segments[:fixed]))
    if b.catch_all is not None or len(a.segments) != len(b.segments):
        return False
    a_slash = a.trailing_slash or a.query is not None
    b_slash = b.trailing_slash or b.query is not None
    return (a_slash or not b_slash) and all(map(covers, a.segments, b.segments))


def _segment_covers(a: Segment, a_cs: bool, b: Segment, b_cs: bool) -> bool:
    if len(a) == 1 and isinstance(a[0], Placeholder):
        return True  # any one non-empty segment; template segments are never empty
    return _same_parts(a, a_cs, b, b_cs)


def _same_parts(a: Segment, a_cs: bool, b: Segment, b_cs: bool) -> bool:
    """Same shape, and each literal of ``a`` matches the corresponding one of ``b``."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, Placeholder) or isinstance(y, Placeholder):
            if not (isinstance(x, Placeholder) and isinstance(y, Placeholder)):
                return False
        elif not _literal_covers(x, a_cs, y, b_cs):
            return False
    return True


def _literal_covers(a: str, a_cs: bool, b: str, b_cs: bool) -> bool:
    if not a_cs:
        return a.lower() == b.lower()
    # A case-sensitive literal covers a case-insensitive one only if case cannot matter.
    return a == b and (b_cs or b.lower() == b.upper())
