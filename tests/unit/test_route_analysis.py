"""Duplicate and shadowed routes, as ``propylon check`` reports them."""

from __future__ import annotations

from propylon.config.model import DownstreamHost, RouteSpec
from propylon.route_analysis import find_conflicts
from propylon.routing import RouteMatch, Router

UPSTREAM = (DownstreamHost("svc", 8080),)
FILE = "ocelot.json"


def routes(*specs: tuple[str, dict[str, object]]) -> list[RouteSpec]:
    return [
        RouteSpec(
            source=f"Routes[{i}]",
            upstream_path=upstream,
            downstream_hosts=UPSTREAM,
            downstream_path=None,
            **extra,  # type: ignore[arg-type]
        )
        for i, (upstream, extra) in enumerate(specs)
    ]


def r(upstream: str, methods: str = "", **extra: object) -> tuple[str, dict[str, object]]:
    return upstream, {"methods": frozenset(methods.split()), **extra}


def found(*specs: tuple[str, dict[str, object]]) -> list[tuple[str, str]]:
    return [(p.path, p.severity) for p in find_conflicts(routes(*specs), FILE)]


# -- exact duplicates -------------------------------------------------------------------------


def test_exact_duplicate_is_an_error_naming_the_route_that_wins() -> None:
    problems = find_conflicts(routes(r("/users/{id}", "GET"), r("/Users/{userId}", "GET")), FILE)
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.file, problem.path, problem.severity) == (FILE, "Routes[1]", "error")
    assert "Routes[0]" in problem.message and "GET" in problem.message
    assert str(problem).startswith("ocelot.json: Routes[1]: error: duplicate of Routes[0]")


def test_duplicates_with_disjoint_methods_are_fine() -> None:
    assert found(r("/users/{id}", "GET"), r("/users/{id}", "DELETE PATCH")) == []


def test_duplicates_with_overlapping_methods_are_an_error() -> None:
    problems = find_conflicts(routes(r("/a", "GET POST"), r("/a", "POST PUT")), FILE)
    assert [(p.path, p.severity) for p in problems] == [("Routes[1]", "error")]
    assert "for POST:" in problems[0].message


def test_method_less_duplicate_conflicts_with_everything() -> None:
    assert found(r("/a", "GET"), r("/a")) == [("Routes[1]", "error")]
    assert found(r("/a"), r("/a", "GET")) == [("Routes[1]", "error")]


def test_duplicate_with_higher_priority_makes_the_earlier_one_lose() -> None:
    assert found(r("/a"), r("/a", priority=2)) == [("Routes[0]", "error")]


def test_case_counts_only_for_case_sensitive_duplicates() -> None:
    assert found(r("/A", case_sensitive=True), r("/a", case_sensitive=True)) == []
    assert found(r("/A", case_sensitive=True), r("/A", case_sensitive=True)) == [
        ("Routes[1]", "error")
    ]


def test_hosts_separate_duplicates() -> None:
    assert found(r("/a", upstream_host="one.example"), r("/a", upstream_host="two.example")) == []
    assert found(r("/a", upstream_host="one.example"), r("/a", upstream_host="ONE.example")) == [
        ("Routes[1]", "error")
    ]
    assert found(r("/a", upstream_host="one.example"), r("/a")) == []
    assert found(r("/a"), r("/a", upstream_host="one.example")) == []


def test_regex_routes_are_compared_only_for_exact_duplicates() -> None:
    assert found(r(r"/p/\d+", path_is_regex=True), r(r"/p/\d+", path_is_regex=True)) == [
        ("Routes[1]", "error")
    ]
    assert found(r(r"/p/.*", path_is_regex=True), r("/p/1")) == []
    assert found(r("/{everything}"), r(r"/p/\d+", path_is_regex=True)) == []


# -- shadowing --------------------------------------------------------------------------------


def test_catch_all_with_equal_priority_shadows_later_routes_under_it() -> None:
    problems = find_conflicts(
        routes(r("/api/{everything}"), r("/api/users"), r("/api"), r("/other")), FILE
    )
    assert [(p.path, p.severity) for p in problems] == [
        ("Routes[1]", "warning"),
        ("Routes[2]", "warning"),
    ]
    assert "Routes[0]" in problems[0].message and "/api/{everything}" in problems[0].message


def test_catch_all_with_lower_priority_shadows_nothing() -> None:
    """Ocelot "Priority": /goods/{catchAll} at Priority 0 lets /goods/delete match."""
    assert found(r("/goods/{catchAll}", priority=0), r("/goods/delete")) == []
    assert found(r("/{everything}", priority=0), r("/a/{b}"), r("/")) == []


def test_root_catch_all_shadows_everything_of_equal_priority() -> None:
    assert found(r("/{everything}"), r("/"), r("/a/{b}/c/")) == [
        ("Routes[1]", "warning"),
        ("Routes[2]", "warning"),
    ]


def test_placeholder_segment_covers_literal_but_not_the_reverse() -> None:
    assert found(r("/users/{id}"), r("/users/me")) == [("Routes[1]", "warning")]
    assert found(r("/users/me"), r("/users/{id}")) == []
    assert found(r("/users/{id}/x"), r("/users/me/y")) == []


def test_single_placeholder_does_not_cover_a_catch_all() -> None:
    assert found(r("/a/{id}/b"), r("/a/{rest}")) == []


def test_later_route_with_higher_priority_shadows_an_earlier_one() -> None:
    assert found(r("/users/me"), r("/users/{id}", priority=3)) == [("Routes[0]", "warning")]


def test_methods_must_all_be_covered() -> None:
    assert found(r("/a/{x}", "GET"), r("/a/b", "GET POST")) == []
    assert found(r("/a/{x}", "GET"), r("/a/b")) == []
    assert found(r("/a/{x}"), r("/a/b", "GET POST")) == [("Routes[1]", "warning")]


def test_several_routes_together_can_shadow_one() -> None:
    problems = find_conflicts(
        routes(r("/a/{x}", "GET"), r("/a/{x}", "POST"), r("/a/b", "GET POST")), FILE
    )
    assert [(p.path, p.severity) for p in problems] == [("Routes[2]", "warning")]
    assert "Routes[0]" in problems[0].message and "Routes[1]" in problems[0].message


def test_empty_placeholder_template_covers_the_bare_parent_path() -> None:
    """Ocelot "Empty Placeholders": /invoices/{url} also matches /invoices and /invoices/."""
    assert found(r("/invoices/{url}"), r("/invoices"), r("/invoices/")) == [
        ("Routes[1]", "warning"),
        ("Routes[2]", "warning"),
    ]


def test_trailing_slash_coverage_follows_the_matcher() -> None:
    assert found(r("/products"), r("/products/")) == []
    assert found(r("/products/"), r("/products")) == [("Routes[1]", "warning")]


def test_case_sensitive_route_does_not_cover_an_insensitive_one() -> None:
    assert found(r("/Users/{id}", case_sensitive=True), r("/Users/me")) == []
    assert found(r("/users/{id}"), r("/Users/me", case_sensitive=True)) == [
        ("Routes[1]", "warning")
    ]
    assert found(r("/v1/{id}", case_sensitive=True), r("/v1/2")) == []  # "/V1/2" escapes it
    assert found(r("/1/{id}", case_sensitive=True), r("/1/2")) == [("Routes[1]", "warning")]


def test_host_constraints_must_be_no_narrower() -> None:
    assert found(
        r("/{all}", upstream_host="a.example"), r("/x", upstream_host="a.example:8080")
    ) == [("Routes[1]", "warning")]
    assert (
        found(r("/{all}", upstream_host="a.example:8080"), r("/x", upstream_host="a.example")) == []
    )
    assert found(r("/{all}", upstream_host="a.example"), r("/x")) == []


def test_query_templates_narrow_a_route() -> None:
    assert found(r("/a?id={id}"), r("/a")) == []
    assert found(r("/a"), r("/a?id={id}")) == []  # "/a/?id=1" matches only the latter
    assert found(r("/a/"), r("/a?id={id}")) == [("Routes[1]", "warning")]
    assert found(r("/a?id={id}"), r("/a?ID={other}")) == [("Routes[1]", "error")]


def test_invalid_templates_are_reported_not_raised() -> None:
    problems = find_conflicts(routes(r("/a/{x}{y}"), r("/b/{x")), FILE)
    assert [(p.path, p.severity) for p in problems] == [
        ("Routes[0]", "error"),
        ("Routes[1]", "error"),
    ]
    assert all(p.message.startswith("invalid route template") for p in problems)


def test_no_problems_for_a_sensible_table() -> None:
    assert (
        found(
            r("/auth/users", "POST"),
            r("/auth/token", "POST"),
            r("/profiles", "GET POST"),
            r("/profiles/{profile_id}", "GET PATCH DELETE"),
            r("/{everything}", priority=0),
        )
        == []
    )


def test_every_shadowed_route_really_never_wins() -> None:
    """What the analysis claims, the router confirms for sample paths."""
    specs = routes(r("/api/{everything}"), r("/api/users"), r("/users/{id}"), r("/users/me"))
    shadowed = {p.path for p in find_conflicts(specs, FILE)}
    assert shadowed == {"Routes[1]", "Routes[3]"}
    router = Router(specs)
    for path in ("/api/users", "/users/me", "/api", "/users/7"):
        result = router.match("GET", None, path)
        assert isinstance(result, RouteMatch)
        assert result.route.spec.source not in shadowed
