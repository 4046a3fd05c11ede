"""The query string a route sends downstream, case by case against Ocelot 25's own tests.

Each test names the Ocelot test it mirrors (``acceptance/Routing/RoutingWithQueryStringTests.cs``,
``unit/DownstreamUrlCreator/DownstreamUrlCreatorMiddlewareTests.cs``,
``unit/DownstreamRouteFinder/UrlMatcher/UrlPathPlaceholderNameAndValueFinderTests.cs``); the
cases are ported, the code is not. Where propylon deliberately differs from Ocelot (the query
bytes go as the client sent them, never re-encoded; docs/configuration.md, "Differences from
Ocelot"), the expected value says so.
"""

from __future__ import annotations

import pytest

from propylon.config.model import DownstreamHost, RouteSpec
from propylon.paths import canonicalise
from propylon.routing import RouteMatch, Router

UPSTREAM = (DownstreamHost("svc", 8080),)


def route(upstream: str, downstream: str | None, **extra: object) -> RouteSpec:
    return RouteSpec(
        source=f"Routes[{upstream}]",
        upstream_path=upstream,
        downstream_hosts=UPSTREAM,
        downstream_path=downstream,
        **extra,  # type: ignore[arg-type]
    )


def forward(upstream: str, downstream: str | None, url: str) -> str | None:
    """The downstream target for ``url`` (path + optional query), or None when no match."""
    router = Router([route(upstream, downstream)])
    return forward_to(router, url)


def forward_to(router: Router, url: str) -> str | None:
    path, _, query = url.partition("?")
    path = canonicalise(path)
    result = router.match("GET", None, path, query)
    return result.downstream_target(path, query) if isinstance(result, RouteMatch) else None


def params_of(upstream: str, url: str) -> dict[str, str]:
    path, _, query = url.partition("?")
    result = Router([route(upstream, None)]).match("GET", None, path, query)
    assert isinstance(result, RouteMatch), result
    return dict(result.params)


# -- acceptance/Routing/RoutingWithQueryStringTests.cs ----------------------------------------


def test_path_placeholder_into_the_downstream_query() -> None:
    # Should_return_response_200_with_query_string_template
    assert (
        forward(
            "/api/units/{subscriptionId}/{unitId}/updates",
            "/api/subscriptions/{subscriptionId}/updates?unitId={unitId}",
            "/api/units/s-1/u-2/updates",
        )
        == "/api/subscriptions/s-1/updates?unitId=u-2"
    )


@pytest.mark.parametrize("additional", ["", "&x=xxx"])
def test_query_placeholder_under_another_parameter_name(additional: str) -> None:
    # Should_return_200_with_query_string_template_different_keys (bug 952)
    assert (
        forward(
            "/api/units/{subscriptionId}/updates?unit={unit}",
            "/api/subscriptions/{subscriptionId}/updates?unitId={unit}",
            f"/api/units/s-1/updates?unit=u-2{additional}",
        )
        == f"/api/subscriptions/s-1/updates?unitId=u-2{additional}"
    )


def test_a_parameter_named_like_its_placeholder_is_replaced() -> None:
    # Should_map_query_parameters_with_different_names (bug 952; also the unit test of that name)
    assert (
        forward("/users?userId={userId}", "/persons?personId={userId}", "/users?userId=webley")
        == "/persons?personId=webley"
    )


def test_a_parameter_named_unlike_its_placeholder_is_kept() -> None:
    # Should_map_query_parameters_with_different_names_and_save_old_param_if_placeholder_and_
    # param_names_differ (bug 952; also the unit test of that name)
    assert (
        forward("/users?userId={uid}", "/persons?personId={uid}", "/users?userId=webley")
        == "/persons?personId=webley&userId=webley"
    )


def test_with_a_downstream_query_the_name_comparison_is_case_sensitive() -> None:
    # Should_map_query_parameters_with_different_names_and_save_old_param_if_placeholder_and_
    # param_names_differ_case_sensitive (bug 952)
    assert (
        forward("/users?userId={userid}", "/persons?personId={userid}", "/users?userId=webley")
        == "/persons?personId=webley&userId=webley"
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "projectNumber=45&startDate=2019-12-12&endDate=2019-12-12",
            "projectNumber=45&startDate=2019-12-12&endDate=2019-12-12",
        ),
        # Ocelot sends the spaces and the colons re-encoded ("%20", "%3A") whatever the client
        # wrote; propylon forwards the client's bytes (a space cannot be sent raw).
        (
            "$filter=ProjectNumber%20eq%2045%20and%20DateOfSale%20ge%202020-03-01T00:00:00z",
            "$filter=ProjectNumber%20eq%2045%20and%20DateOfSale%20ge%202020-03-01T00:00:00z",
        ),
    ],
)
def test_catch_all_query_forwards_every_parameter_once(query: str, expected: str) -> None:
    # Should_return_200_and_forward_query_parameters_without_duplicates (bug 1174), and the unit
    # test Should_forward_query_parameters_without_duplicates
    assert (
        forward(
            "/contracts?{everythingelse}", "/api/contracts?{everythingelse}", f"/contracts?{query}"
        )
        == f"/api/contracts?{expected}"
    )


def test_odata_query_through_the_catch_all_route() -> None:
    # Should_return_response_200_with_odata_query_string (bug 548). Ocelot re-encodes "'" as
    # "%27"; propylon forwards the bytes as sent.
    assert (
        forward("/{everything}", "/{everything}", "/odata/customers?$filter=Name%20eq%20'Sam'")
        == "/odata/customers?$filter=Name%20eq%20'Sam'"
    )


def test_query_placeholder_into_the_downstream_path() -> None:
    # Should_return_response_200_with_query_string_upstream_template (feature 467)
    assert (
        forward(
            "/api/subscriptions/{subscriptionId}/updates?unitId={unitId}",
            "/api/units/{subscriptionId}/{unitId}/updates",
            "/api/subscriptions/s-1/updates?unitId=u-2",
        )
        == "/api/units/s-1/u-2/updates"
    )


@pytest.mark.parametrize("query", ["", "?test=1"])
def test_query_template_without_its_parameter_does_not_match(query: str) -> None:
    # Should_return_response_404_with_query_string_upstream_template_no_query_string and
    # Should_return_response_404_with_query_string_upstream_template_different_query_string
    # (feature 467)
    assert (
        forward(
            "/api/subscriptions/{subscriptionId}/updates?unitId={unitId}",
            "/api/units/{subscriptionId}/{unitId}/updates",
            f"/api/subscriptions/s-1/updates{query}",
        )
        is None
    )


def test_query_template_keeps_the_other_parameters() -> None:
    # Should_return_response_200_with_query_string_upstream_template_multiple_params (467)
    assert (
        forward(
            "/api/subscriptions/{subscriptionId}/updates?unitId={unitId}",
            "/api/units/{subscriptionId}/{unitId}/updates",
            "/api/subscriptions/s-1/updates?unitId=u-2&productId=1",
        )
        == "/api/units/s-1/u-2/updates?productId=1"
    )


ISSUE_2002 = (
    "/WeatherForecast/{roleid}/groups?username={username}&groupName={groupName}&{everything}",
    "/account/{username}/groups/{groupName}/roles?roleId={roleid}&{everything}",
)


def test_a_parameter_carried_by_a_placeholder_is_not_appended_again() -> None:
    # Should_map_when_query_parameters_has_same_names_with_placeholder (bug 2002; acceptance
    # and unit tests). Issue 11, item 6: something=9874565 was forwarded twice.
    assert (
        forward(
            *ISSUE_2002,
            "/WeatherForecast/123456/groups?username=bbenameur&groupName=Paris&something=9874565",
        )
        == "/account/bbenameur/groups/Paris/roles?roleId=123456&something=9874565"
    )


def test_parameters_after_the_carried_one_go_once_each() -> None:
    # Beyond Should_map_when_query_parameters_has_same_names_with_placeholder: Ocelot would
    # drop a second "a" (and collapse repeats); propylon forwards each other parameter once.
    assert (
        forward(
            *ISSUE_2002,
            "/WeatherForecast/1/groups?username=u&groupName=g&a=1&b=2&a=3&roleId=x&username=y",
        )
        == "/account/u/groups/g/roles?roleId=1&a=1&b=2&a=3"
    )


def test_a_carried_parameter_cannot_duplicate_a_template_parameter() -> None:
    """propylon: the parameter a single-placeholder item carries is left out when the template
    has a parameter of its name (Ocelot would send roleId=123456%2Cevil)."""
    assert (
        forward(
            *ISSUE_2002, "/WeatherForecast/123456/groups?username=u&groupName=g&roleId=evil&x=1"
        )
        == "/account/u/groups/g/roles?roleId=123456&x=1"
    )
    assert (
        forward(*ISSUE_2002, "/WeatherForecast/123456/groups?username=u&groupName=g&roleid=7")
        == "/account/u/groups/g/roles?roleId=123456&roleid=7"
    )


def test_a_parameter_named_unlike_every_placeholder_is_kept() -> None:
    # Should_copy_query_string_to_downstream_path (bug 1288)
    assert forward("/safe/{id}", "/cpx/t1/{id}", "/safe/3?id1=2312") == "/cpx/t1/3?id1=2312"


def test_catch_all_query_named_id_keeps_customer_id() -> None:
    # Should_not_corrupt_query_parameter_names_containing_id_when_route_has_id_placeholder_as_
    # a_Catch_All_Query_String (PR 2351, bug 2346)
    router = Router(
        [
            route("/finance/v1/payment-methods?{id}", "/v1/payment-methods?{id}"),
            route("/finance/v1/payment-methods", "/v1/payment-methods"),
        ]
    )
    assert (
        forward_to(router, "/finance/v1/payment-methods?customer_id=12345")
        == "/v1/payment-methods?customer_id=12345"
    )
    assert forward_to(router, "/finance/v1/payment-methods") == "/v1/payment-methods"


@pytest.mark.parametrize(
    ("upstream", "downstream", "url", "expected"),
    [
        (
            "/finance/v1/payment-methods/{id}",
            "/v1/payment-methods/{id}",
            "/finance/v1/payment-methods/?customer_id=123",
            "/v1/payment-methods/?customer_id=123",
        ),
        (
            "/finance/v1/payment-methods/{id}/orders/{oid}",
            "/v1/orders/{id}/{oid}",
            "/finance/v1/payment-methods/1/orders/2?id=1&oid=2&orderid=3&customer_id=4",
            "/v1/orders/1/2?orderid=3&customer_id=4",
        ),
        (
            "/finance/v1/users/{customer_id}",
            "/v1/users/{customer_id}",
            "/finance/v1/users/123?id=999&customer_id=x",
            "/v1/users/123?id=999",
        ),
        (  # parameters named like a placeholder in any letter case are removed
            "/finance/v1/items/{id}/{Id}",
            "/v1/items/{Id}/{id}",
            "/finance/v1/items/1/2?id=3&Id=4&ID=5&extra=x",
            "/v1/items/2/1?extra=x",
        ),
        (
            "/finance/v1/data/{id}",
            "/v1/data/{id}",
            "/finance/v1/data/123/?xid=1&idx=2&id=3&extra=x",
            "/v1/data/123/?xid=1&idx=2&extra=x",
        ),
        (
            "/finance/v1/records/{id1}",
            "/v1/records/{id1}",
            "/finance/v1/records/123/?id1=1&id10=10&extra=x",
            "/v1/records/123/?id10=10&extra=x",
        ),
        (
            "/finance/v1/alpha/{id}",
            "/v1/alpha/{id}",
            "/finance/v1/alpha/123/?id_=1&_id=2&id=3&extra=x",
            "/v1/alpha/123/?id_=1&_id=2&extra=x",
        ),
        (
            "/finance/v2/orders/{id}",
            "/v2/orders/{id}",
            "/finance/v2/orders/42?status=active&customer_id=123&extra=x",
            "/v2/orders/42?status=active&customer_id=123&extra=x",
        ),
    ],
)
def test_only_parameters_named_exactly_like_a_placeholder_are_removed(
    upstream: str, downstream: str, url: str, expected: str
) -> None:
    # Should_not_corrupt_query_parameter_names_containing_id_when_route_has_id_placeholder
    # (PR 2351, bug 2346; acceptance test)
    assert forward(upstream, downstream, url) == expected


# -- unit/DownstreamUrlCreator/DownstreamUrlCreatorMiddlewareTests.cs -------------------------


def test_without_placeholders_the_query_is_forwarded_unchanged() -> None:
    # Should_replace_scheme_and_path
    assert forward("/abc", "/api/products/1", "/abc?q=123") == "/api/products/1?q=123"


def test_the_query_placeholder_parameter_is_removed() -> None:
    # Should_replace_query_string (feature 467)
    assert (
        forward(
            "/api/subscriptions/{subscriptionId}/updates?unitId={unitId}",
            "/api/units/{subscriptionId}/{unitId}/updates",
            "/api/subscriptions/1/updates?unitId=2",
        )
        == "/api/units/1/2/updates"
    )


@pytest.mark.parametrize("query", ["unitId=2&productId=2", "productId=2&unitId=2"])
def test_parameters_named_like_a_path_placeholder_go_wherever_they_are(query: str) -> None:
    # Should_replace_query_string_but_leave_non_placeholder_queries (feature 467) and
    # Should_replace_query_string_but_leave_non_placeholder_queries_2 (bug 1288)
    assert (
        forward(
            "/api/subscriptions/{subscriptionId}/{unitId}/updates",
            "/api/units/{subscriptionId}/{unitId}/updates",
            f"/api/subscriptions/1/2/updates?{query}",
        )
        == "/api/units/1/2/updates?productId=2"
    )


def test_removal_compares_the_whole_parameter_name() -> None:
    # Should_replace_query_string_exact_match (feature 467): "unitId=2?unitIdIty=3" is one
    # parameter named unitId, so it is removed, and nothing else is.
    assert (
        forward(
            "/api/subscriptions/{subscriptionId}/{unitId}/updates/{unitIdIty}",
            "/api/units/{subscriptionId}/{unitId}/updates/{unitIdIty}",
            "/api/subscriptions/1/2/updates/3?unitId=2?unitIdIty=3",
        )
        == "/api/units/1/2/updates/3"
    )


def test_a_template_parameter_keeps_the_request_parameters_of_other_names() -> None:
    # Should_not_remove_additional_query_parameter_when_placeholder_and_parameter_names_are_
    # different (bug 473)
    assert (
        forward(
            "/uc/Authorized/{servak}/{action}",
            "/Authorized/{action}?server={servak}",
            "/uc/Authorized/2/1?refreshToken=123456789",
        )
        == "/Authorized/1?server=2&refreshToken=123456789"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/test/v1/123", "/api/v1/test/123"),
        ("/test/v1/123?query=1", "/api/v1/test/123?query=1"),
        ("/test/v1/?query=1", "/api/v1/test/?query=1"),
        ("/test/v1?query=1", "/api/v1/test?query=1"),
        ("/test/v1/", "/api/v1/test/"),
        ("/test/v1", "/api/v1/test"),
    ],
)
def test_an_empty_catch_all_keeps_the_query(url: str, expected: str) -> None:
    # Should_fix_issue_748 (bug 748)
    assert forward("/test/{version}/{url}", "/api/{version}/test/{url}", url) == expected


def test_the_ending_slash_is_omitted_when_the_upstream_path_has_none() -> None:
    # Should_omit_the_ending_slash_from_the_downstream_path_when_the_upstream_path_has_no_
    # ending_slash (bug 748)
    assert (
        forward("/test/{version}/{url}", "/api/{version}/test/{url}/", "/test/v1/abcd")
        == "/api/v1/test/abcd"
    )


@pytest.mark.parametrize("value", ["debug()", "debug%28%29"])
def test_regex_characters_in_a_value(value: str) -> None:
    # ShouldNotFailToHandleUrlWithSpecialRegexChars (bug 2116)
    assert forward("/routed/api/{path}", "/api/{path}", f"/routed/api/{value}") == f"/api/{value}"


@pytest.mark.parametrize(
    ("downstream", "placeholder", "query", "expected"),
    [
        ("/v1/payment-methods", "id", "customer_id=12345", "?customer_id=12345"),
        ("/v1/orders", "id", "orderid=999&customer_id=12345", "?orderid=999&customer_id=12345"),
        ("/v1/users", "customer_id", "id=999", "?id=999"),
        ("/v1/records", "id1", "id1=123&id10=456", "?id10=456"),
    ],
)
def test_names_containing_a_placeholder_name_are_not_removed(
    downstream: str, placeholder: str, query: str, expected: str
) -> None:
    # Should_not_corrupt_query_parameter_names_containing_id_when_route_has_id_placeholder
    # (PR 2351, bug 2346; unit test): the placeholder is captured but not used downstream.
    upstream = f"/in/{{{placeholder}}}/x"
    assert forward(upstream, downstream, f"/in/123/x?{query}") == downstream + expected


# -- unit/DownstreamRouteFinder/UrlMatcher/UrlPathPlaceholderNameAndValueFinderTests.cs -------


@pytest.mark.parametrize(
    ("template", "url", "params"),
    [
        # Should_find_query_string
        ("/products?productId={productId}", "/products?productId=1", {"productId": "1"}),
        # Should_find_query_string_dont_include_hardcoded
        (
            "/products?productId={productId}",
            "/products?productId=1&categoryId=2",
            {"productId": "1"},
        ),
        # Should_find_multiple_query_string
        (
            "/products?productId={productId}&categoryId={categoryId}",
            "/products?productId=1&categoryId=2",
            {"productId": "1", "categoryId": "2"},
        ),
        # Should_find_multiple_query_string_and_path
        (
            "/products/{account}?productId={productId}&categoryId={categoryId}",
            "/products/3?productId=1&categoryId=2",
            {"account": "3", "productId": "1", "categoryId": "2"},
        ),
        # Should_find_multiple_query_string_and_path_that_ends_with_slash
        (
            "/products/{account}/?productId={productId}&categoryId={categoryId}",
            "/products/3/?productId=1&categoryId=2",
            {"account": "3", "productId": "1", "categoryId": "2"},
        ),
        # Should_return_catch_all_query_placeholder_when_template_has_catch_all_query (PR 2328)
        ("/api/test?{everything}", "/api/test?filter=active", {"everything": ""}),
        # Should_handle_catch_all_query_with_various_inputs (PR 2328)
        ("/api/test?{query}", "/api/test", {"query": ""}),
        ("/api/test?{query}", "/api/test?other=1", {"query": ""}),
    ],
)
def test_query_placeholder_values(template: str, url: str, params: dict[str, str]) -> None:
    assert params_of(template, url) == params


# -- where propylon deliberately differs (docs/configuration.md, "Differences from Ocelot") --


def test_removal_reads_percent_encoded_names() -> None:
    """A parameter named like a placeholder is removed however its name is encoded; what is
    kept goes byte for byte, "+" and escapes included (Ocelot re-encodes it)."""
    assert (
        forward("/u/{id}", "/users/{id}", "/u/7?%69D=1&i%64=2&+id=3&q=a+b%2fc&raw")
        == "/users/7?+id=3&q=a+b%2fc&raw"
    )


def test_repeated_and_valueless_parameters_are_kept_when_merged() -> None:
    """Ocelot joins repeated names into one comma-separated value and drops parameters
    without "=" when it merges; propylon forwards each as sent."""
    assert (
        forward("/s/{term}", "/search?q={term}", "/s/x?tag=a&tag=b&flag&&q=spoof")
        == "/search?q=x&tag=a&tag=b&flag"
    )


def test_nothing_removed_leaves_the_query_byte_for_byte() -> None:
    assert forward("/u/{id}", "/users/{id}", "/u/7?a=1&&b=%2F&") == "/users/7?a=1&&b=%2F&"
    assert forward("/u/{id}", "/users/{id}", "/u/7?id=1&id=2") == "/users/7"


def test_template_parameters_come_first_then_the_request_parameters() -> None:
    """Ocelot's "Merging of Query Parameters": the template's parameters, then the request's,
    wherever the catch-all stands in the template."""
    assert forward("/c?{q}", "/api/c?{q}&v=2", "/c?a=1&v=9&b=2") == "/api/c?v=2&a=1&b=2"
    assert forward("/c?{q}", "/api/c?x={q}", "/c?a=1") == "/api/c?x=&a=1"


def test_path_values_in_a_merged_query_stay_escaped() -> None:
    """A path value cannot add a parameter nor suppress one (Ocelot would parse it)."""
    assert (
        forward("/s/{term}", "/search?q={term}", "/s/a&admin=1?admin=2")
        == "/search?q=a%26admin%3D1&admin=2"
    )


def test_without_a_downstream_template_the_query_is_unchanged() -> None:
    """Routes that forward the request path (native format without ``downstream.path``, the
    first seed's routes) forward the query as it came, whatever the template names."""
    assert forward("/users?userId={userId}", None, "/users?userId=5&x=1") == ("/users?userId=5&x=1")
    router = Router([route(r"/p/(?P<id>\d+)", None, path_is_regex=True)])
    assert forward_to(router, "/p/1?id=2") == "/p/1?id=2"


def test_regex_groups_count_as_placeholders() -> None:
    router = Router([route(r"/p/(?P<id>\d+)", "/profiles/{id}", path_is_regex=True)])
    assert forward_to(router, "/p/1?ID=2&x=3") == "/profiles/1?x=3"
