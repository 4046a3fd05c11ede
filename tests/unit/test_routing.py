"""The route matcher against Ocelot's documented routing behaviour (docs/features/routing.rst,
"Routing" chapter of ocelot.readthedocs.io), plus what propylon adds: 405s and safety."""

from __future__ import annotations

import pytest

from propylon.config.model import DownstreamHost, RouteSpec
from propylon.paths import PathRejected, canonicalise
from propylon.route_templates import RouteTemplateError
from propylon.routing import (
    NO_ROUTE,
    MethodNotAllowed,
    NoRoute,
    RouteMatch,
    Router,
)

UPSTREAM = (DownstreamHost("svc", 8080),)


def route(
    upstream: str, downstream: str | None = None, *, methods: str = "", **extra: object
) -> RouteSpec:
    return RouteSpec(
        source=f"Routes[{upstream}]",
        upstream_path=upstream,
        downstream_hosts=UPSTREAM,
        downstream_path=downstream,
        methods=frozenset(methods.split()),
        **extra,  # type: ignore[arg-type]
    )


def forward(
    router: Router, path: str, query: str = "", *, method: str = "GET", host: str | None = None
) -> str | None:
    """What the downstream would be asked for, or None when nothing matches."""
    result = router.match(method, host, path, query)
    return result.downstream_target(path, query) if isinstance(result, RouteMatch) else None


def winner(router: Router, path: str, method: str = "GET", host: str | None = None) -> int:
    result = router.match(method, host, path)
    assert isinstance(result, RouteMatch), result
    return result.route.index


# -- placeholders -----------------------------------------------------------------------------


def test_placeholder_is_substituted_into_the_downstream_template() -> None:
    """Ocelot "Placeholders": /posts/{postId} -> /api/posts/{postId}."""
    router = Router([route("/posts/{postId}", "/api/posts/{postId}", methods="PUT DELETE")])
    result = router.match("PUT", None, "/posts/42")
    assert isinstance(result, RouteMatch)
    assert dict(result.params) == {"postId": "42"}
    assert result.downstream_target("/posts/42", "") == "/api/posts/42"


def test_a_placeholder_before_a_slash_matches_exactly_one_segment() -> None:
    """Ocelot's pattern for a placeholder followed by "/" is [^/]+: one non-empty segment."""
    router = Router([route("/posts/{id}/comments", "/c/{id}")])
    assert forward(router, "/posts/7/comments") == "/c/7"
    assert forward(router, "/posts/7/8/comments") is None
    assert forward(router, "/posts//comments") is None


def test_embedded_placeholders_share_a_segment() -> None:
    """Ocelot "Embedded Placeholders" (23.4): several placeholders between two slashes."""
    router = Router([route("/api/invoices_{a}/{b}-{c}_abcd/{d}", "/x/{a}/{b}/{c}/{d}")])
    assert forward(router, "/api/invoices_super/123-456_abcd/789") == "/x/super/123/456/789"


def test_catch_all_captures_the_rest_of_the_path_with_slashes() -> None:
    """Ocelot "Catch All": /{everything} -> /api/{everything} forwards any path."""
    router = Router([route("/{everything}", "/api/{everything}", priority=0)])
    assert forward(router, "/a/b/c") == "/api/a/b/c"
    assert forward(router, "/") == "/api/"
    nested = Router([route("/api/{everything}", "/svc/{everything}")])
    assert forward(nested, "/api/v1/users/7/") == "/svc/v1/users/7/"
    assert forward(nested, "/apix/v1") is None


def test_catch_all_has_lower_priority_than_root_route() -> None:
    """Ocelot "Catch All": with /{url} and / configured, / is matched before the catch-all
    (the reader gives /{url} priority 0)."""
    router = Router([route("/{url}", "/{url}", priority=0), route("/", "/root")])
    assert forward(router, "/") == "/root"
    assert forward(router, "/x") == "/x"


def test_priority_beats_file_order_and_file_order_breaks_ties() -> None:
    """Ocelot "Priority": /goods/{catchAll} with Priority 0 and /goods/delete with Priority 1:
    /goods/delete matches the latter; previously (equal priority) the first in the list won."""
    prioritised = Router(
        [route("/goods/{catchAll}", "/all", priority=0), route("/goods/delete", "/delete")]
    )
    assert forward(prioritised, "/goods/delete") == "/delete"
    assert forward(prioritised, "/goods/list") == "/all"
    in_file_order = Router([route("/goods/{catchAll}", "/all"), route("/goods/delete", "/delete")])
    assert forward(in_file_order, "/goods/delete") == "/all"


# -- empty placeholders and trailing slashes --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "downstream"),
    [
        ("/invoices/123", "/api/invoices/123"),
        ("/invoices/", "/api/invoices/"),
        ("/invoices", "/api/invoices"),
        ("/invoices/1/lines", "/api/invoices/1/lines"),
    ],
)
def test_empty_placeholders(path: str, downstream: str) -> None:
    """Ocelot "Empty Placeholders" (23.0): /invoices/{url} -> /api/invoices/{url}; /invoices/
    reaches /api/invoices/ and, omitting the last slash, /invoices reaches /api/invoices."""
    router = Router([route("/invoices/{url}", "/api/invoices/{url}")])
    assert forward(router, path) == downstream
    assert forward(router, "/invoicesX") is None


def test_template_with_trailing_slash_matches_with_or_without_it() -> None:
    """Ocelot's pattern for a template ending in "/" is "(/|)"; one without it is exact."""
    router = Router([route("/products/", "/p/"), route("/orders", "/o")])
    assert forward(router, "/products/") == "/p/"
    assert forward(router, "/products") == "/p"
    assert forward(router, "/orders") == "/o"
    assert forward(router, "/orders/") is None


def test_downstream_trailing_slash_follows_the_request() -> None:
    """Ocelot trims the downstream's trailing slash when the request path has none."""
    router = Router([route("/a", "/svc/a/"), route("/b/", "/svc/b/")])
    assert forward(router, "/a") == "/svc/a"
    assert forward(router, "/b/") == "/svc/b/"
    assert forward(router, "/b") == "/svc/b"


# -- case -------------------------------------------------------------------------------------


def test_matching_is_case_insensitive_and_values_keep_their_case() -> None:
    """Ocelot: "the default Routing configuration is case insensitive"."""
    router = Router([route("/PRODUCTS/{id}/Parts", "/p/{id}"), route("/Static", "/s")])
    assert forward(router, "/products/AbC/parts") == "/p/AbC"
    assert forward(router, "/sTaTiC") == "/s"


def test_route_is_case_sensitive_when_configured() -> None:
    """Ocelot "RouteIsCaseSensitive": true makes the evaluation case-sensitive."""
    router = Router(
        [
            route("/Products/{id}", "/cs/{id}", case_sensitive=True),
            route("/Static", "/s", case_sensitive=True),
        ]
    )
    assert forward(router, "/Products/7") == "/cs/7"
    assert forward(router, "/products/7") is None
    assert forward(router, "/Static") == "/s"
    assert forward(router, "/static") is None


def test_case_sensitive_and_insensitive_static_routes_keep_their_order() -> None:
    router = Router([route("/Exact", "/first", case_sensitive=True), route("/exact", "/second")])
    assert forward(router, "/Exact") == "/first"
    assert forward(router, "/EXACT") == "/second"


# -- query strings ----------------------------------------------------------------------------


def test_query_string_is_forwarded_unchanged() -> None:
    """Ocelot "Placeholders": a catch-all forwards "any path + query string combinations"."""
    router = Router([route("/{everything}", "/api/{everything}", priority=0)])
    assert forward(router, "/a", "b=1&c=%20&b=2&&x") == "/api/a?b=1&c=%20&b=2&&x"
    assert forward(router, "/a", "") == "/api/a"


def test_path_placeholder_into_downstream_query() -> None:
    """Ocelot "Path to Query String direction": {unit} becomes the unitId parameter."""
    router = Router(
        [
            route(
                "/api/units/{subscription}/{unit}/updates",
                "/api/subscriptions/{subscription}/updates?unitId={unit}",
            )
        ]
    )
    assert forward(router, "/api/units/s1/u2/updates") == "/api/subscriptions/s1/updates?unitId=u2"
    assert (
        forward(router, "/api/units/s1/u2/updates", "x=1")
        == "/api/subscriptions/s1/updates?unitId=u2&x=1"
    )


def test_query_placeholder_into_downstream_path() -> None:
    """Ocelot "Query String to Path direction": matches only when the query string starts with
    unitId=something; other parameters may follow."""
    router = Router(
        [
            route(
                "/api/subscriptions/{subscriptionId}/updates?unitId={uid}",
                "/api/units/{subscriptionId}/{uid}/updates",
            )
        ]
    )
    path = "/api/subscriptions/s1/updates"
    assert forward(router, path, "unitId=u2") == "/api/units/s1/u2/updates?unitId=u2"
    assert forward(router, path, "unitId=u2&x=1") == "/api/units/s1/u2/updates?unitId=u2&x=1"
    assert forward(router, path, "x=1&unitId=u2") is None
    assert forward(router, path, "") is None


def test_catch_all_query_string() -> None:
    """Ocelot "Catch All Query String": /contracts?{everything} -> /apipath/contracts?
    {everything}; /contracts? and /contracts reach /apipath/contracts with no query."""
    router = Router([route("/contracts?{everything}", "/apipath/contracts?{everything}")])
    assert forward(router, "/contracts", "$filter=Name eq 'x'&$top=2") == (
        "/apipath/contracts?$filter=Name eq 'x'&$top=2"
    )
    assert forward(router, "/contracts", "") == "/apipath/contracts"


def test_placeholder_named_like_a_parameter_removes_it() -> None:
    """Ocelot "Control over parameter existence": same names remove the old parameter
    (/users?userId={userId} -> /persons?personId={userId}); different names keep it."""
    removing = Router([route("/users?userId={userId}", "/persons?personId={userId}")])
    assert forward(removing, "/users", "userId=5&z=1") == "/persons?personId=5&z=1"
    keeping = Router([route("/path/{serverId}/{action}", "/path2/{action}?server={serverId}")])
    assert forward(keeping, "/path/7/run", "server=spoofed&x=1") == "/path2/run?server=7&x=1"


def test_path_values_cannot_add_query_parameters() -> None:
    router = Router([route("/s/{term}", "/search?q={term}")])
    assert forward(router, "/s/a&admin=1#x+y") == "/search?q=a%26admin%3D1%23x%2By"
    # Security review item 8: ";" splits parameters for some parsers; "=" starts a value.
    q = Router([route("/q/{id}", "/query?id={id}&fixed=1")])
    assert forward(q, "/q/a;admin=1") == "/query?id=a%3Badmin%3D1&fixed=1"


# -- upstream host ----------------------------------------------------------------------------


def test_upstream_host_restricts_the_route() -> None:
    """Ocelot "Upstream Host": the route only matches when the Host header is that host."""
    router = Router([route("/", "/hosted", upstream_host="somedomain.com")])
    assert forward(router, "/", host="somedomain.com") == "/hosted"
    assert forward(router, "/", host="SomeDomain.COM:8080") == "/hosted"
    assert forward(router, "/", host="other.com") is None
    assert forward(router, "/", host=None) is None


def test_upstream_host_with_a_port_requires_that_port() -> None:
    router = Router([route("/", "/hosted", upstream_host="example.com:8443")])
    assert forward(router, "/", host="example.com:8443") == "/hosted"
    assert forward(router, "/", host="example.com") is None
    assert forward(router, "/", host="example.com:80") is None
    v6 = Router([route("/", "/v6", upstream_host="[::1]")])
    assert forward(v6, "/", host="[::1]:9000") == "/v6"


def test_route_with_upstream_host_is_favoured() -> None:
    """Ocelot "Upstream Host": of two routes that differ only in UpstreamHost, the one that has
    it set is favoured; Ocelot's finder prefers it over any host-less match."""
    router = Router(
        [
            route("/{everything}", "/any/{everything}", priority=5),
            route("/api/{everything}", "/hosted/{everything}", upstream_host="a.example"),
        ]
    )
    assert forward(router, "/api/x", host="a.example") == "/hosted/x"
    assert forward(router, "/api/x", host="b.example") == "/any/api/x"


# -- regular-expression routes ----------------------------------------------------------------


def test_regex_route_matches_the_whole_canonical_path() -> None:
    router = Router(
        [
            route(
                r"/profiles/(?P<profile_id>\d+)",
                None,
                path_is_regex=True,
                downstream_path_prefix="/internal",
            )
        ]
    )
    result = router.match("GET", None, "/Profiles/12")
    assert isinstance(result, RouteMatch)
    assert dict(result.params) == {"profile_id": "12"}
    assert result.downstream_target("/Profiles/12", "a=1") == "/internal/Profiles/12?a=1"
    assert forward(router, "/profiles/12/x") is None
    assert forward(router, "/x/profiles/12") is None


def test_regex_route_case_sensitivity_and_downstream_template() -> None:
    router = Router(
        [route(r"/p/(?P<pid>[a-z]+)", "/svc/{pid}", path_is_regex=True, case_sensitive=True)]
    )
    assert forward(router, "/p/abc") == "/svc/abc"
    assert forward(router, "/P/abc") is None


def test_regex_and_template_routes_interleave_by_rank() -> None:
    router = Router(
        [
            route("/a/{x}", "/first/{x}", priority=0),
            route(r"/a/\d+", None, path_is_regex=True),
            route("/a/{x}/b", "/third/{x}"),
            route("/a/9", "/fourth", priority=2),
        ]
    )
    assert forward(router, "/a/9") == "/fourth"
    assert forward(router, "/a/12") == "/a/12"
    assert forward(router, "/a/q/b") == "/third/q"
    assert forward(router, "/a/q") == "/first/q"


# -- methods ----------------------------------------------------------------------------------


def test_no_methods_means_every_method() -> None:
    """Ocelot: "set an empty list to allow any of them"."""
    router = Router([route("/a", "/a")])
    for method in ("GET", "POST", "PATCH", "PURGE"):
        assert forward(router, "/a", method=method) == "/a"


def test_wrong_method_on_a_known_path_is_method_not_allowed() -> None:
    router = Router(
        [
            route("/profiles/{id}", "/p/{id}", methods="GET PATCH"),
            route("/profiles/{id}", "/p/{id}", methods="DELETE"),
            route("/other", "/o", methods="POST"),
        ]
    )
    assert router.match("PUT", None, "/profiles/1") == MethodNotAllowed(("DELETE", "GET", "PATCH"))
    assert router.match("PURGE", None, "/profiles/1") == MethodNotAllowed(
        ("DELETE", "GET", "PATCH")
    )
    assert router.match("GET", None, "/nowhere") is NO_ROUTE
    assert isinstance(NO_ROUTE, NoRoute)


def test_head_is_not_implied_by_get() -> None:
    router = Router([route("/a", "/a", methods="GET")])
    assert router.match("HEAD", None, "/a") == MethodNotAllowed(("GET",))


def test_method_not_allowed_only_counts_routes_for_this_host() -> None:
    router = Router([route("/a", "/a", methods="POST", upstream_host="internal")])
    assert router.match("GET", "internal", "/a") == MethodNotAllowed(("POST",))
    assert router.match("GET", "public", "/a") is NO_ROUTE


def test_method_specific_route_loses_to_earlier_route_for_its_method_only() -> None:
    router = Router([route("/a", "/get", methods="GET"), route("/a", "/any")])
    assert forward(router, "/a", method="GET") == "/get"
    assert forward(router, "/a", method="POST") == "/any"


# -- the downstream never escapes its template ------------------------------------------------


ATTACKS = [
    "/public/%2e%2e/admin",
    "/public/%2E%2e/admin",
    "/public/.%2e/admin",
    "/public/..%2fadmin",
    "/public%2f..%2fadmin",
    "/public/..;/admin",
    "/public/..\\admin",
    "/public/%5c../admin",
    "/public/%00",
    "/../admin",
    "/public/./../../admin",
    "/public/x/../../../admin",
    "/PUBLIC/%2e%2e%2f",
]


@pytest.mark.parametrize("raw", ATTACKS)
def test_path_attacks_are_refused_or_stay_inside_the_template(raw: str) -> None:
    router = Router([route("/public/{everything}", "/srv/public/{everything}")])
    try:
        path = canonicalise(raw)
    except PathRejected:
        return
    target = forward(router, path)
    assert target is None or target.startswith("/srv/public/"), (raw, target)


def test_embedded_placeholder_cannot_become_a_dot_segment() -> None:
    router = Router([route("/f/{name}.json", "/files/{name}")])
    assert forward(router, "/f/report.json") == "/files/report"
    assert forward(router, canonicalise("/f/..json")) is None
    assert forward(router, canonicalise("/f/%2e%2e.json")) is None
    assert forward(router, canonicalise("/f/...json")) is None
    trailing = Router([route("/t/{rest}", "/files/{rest}.")])
    assert forward(trailing, "/t/") is None
    assert forward(trailing, "/t/a") == "/files/a."


def test_dot_risk_only_drops_the_risky_route() -> None:
    router = Router([route("/f/{name}.json", "/files/{name}"), route("/f/{x}", "/fallback/{x}")])
    assert forward(router, "/f/..json") == "/fallback/..json"


@pytest.mark.parametrize(
    ("query", "downstream"),
    [
        ("id=abc", "/u/abc"),
        ("id=a%20b", "/u/a%20b"),
        ("id=..", None),
        ("id=.", None),
        ("id=%2e%2e", None),
        ("id=%2E.", None),
        ("id=a/b", None),
        ("id=a%2fb", None),
        ("id=a%5cb", None),
        ("id=a\\b", None),
        ("id=%00", None),
        ("id=", "/u"),
    ],
)
def test_query_value_in_downstream_path_must_be_one_safe_segment(
    query: str, downstream: str | None
) -> None:
    router = Router([route("/users?id={id}", "/u/{id}")])
    target = forward(router, "/users", query)
    assert (target.partition("?")[0] if target else None) == downstream


# -- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "downstream", "extra"),
    [
        ("/a/{x}{y}", "/{x}", {}),
        ("/a/{x", "/", {}),
        ("/a/x}", "/", {}),
        ("/a/{}", "/", {}),
        ("/a/{x y}", "/", {}),
        ("a/b", "/", {}),
        ("/a//b", "/", {}),
        ("/a/../b", "/", {}),
        ("/a/{x}/{x}", "/{x}", {}),
        ("/a/{x}", "/{y}", {}),
        ("/a/{x}", "no-slash/{x}", {}),
        ("/a?{q}", "/b/{q}", {}),
        ("/a/(", None, {"path_is_regex": True}),
        (r"/a/(?P<x>\d+)", "/b/{y}", {"path_is_regex": True}),
    ],
)
def test_bad_templates_are_refused_with_the_route_named(
    upstream: str, downstream: str | None, extra: dict[str, bool]
) -> None:
    spec = route(upstream, downstream, path_is_regex=extra.get("path_is_regex", False))
    with pytest.raises(RouteTemplateError, match=r"^Routes\["):
        Router([route("/fine", "/fine"), spec])


def test_routes_keep_config_order_and_index() -> None:
    specs = [route("/{everything}", "/x/{everything}", priority=0), route("/a", "/a")]
    router = Router(specs)
    assert [r.index for r in router.routes] == [0, 1]
    assert [r.spec for r in router.routes] == specs
    assert winner(router, "/a") == 1
