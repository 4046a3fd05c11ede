"""Properties of the route matcher over generated templates, paths and route tables."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

from hypothesis import given
from hypothesis import strategies as st

from propylon.config.model import DownstreamHost, RouteSpec
from propylon.paths import PathRejected, canonicalise
from propylon.routing import RouteMatch, Router

UPSTREAM = (DownstreamHost("svc", 8080),)
SEGMENT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"

literals = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
values = st.text(alphabet=SEGMENT_CHARS, min_size=1, max_size=8).filter(
    lambda v: v not in (".", "..")
)
rests = st.lists(values, max_size=4).map("/".join)


def route(upstream: str, downstream: str | None, **extra: object) -> RouteSpec:
    return RouteSpec(
        source="Routes[?]",
        upstream_path=upstream,
        downstream_hosts=UPSTREAM,
        downstream_path=downstream,
        **extra,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Case:
    upstream: str
    downstream: str
    path: str
    params: dict[str, str]
    expected_downstream: str


@st.composite
def filled_templates(draw: st.DrawFn) -> Case:
    """A template of literal and placeholder segments (maybe ending in a catch-all), a path
    made by substituting values into it, and the downstream those values should produce."""
    kinds = draw(st.lists(st.sampled_from(["literal", "placeholder"]), min_size=1, max_size=5))
    catch_all = draw(st.booleans())
    upstream: list[str] = []
    path: list[str] = []
    params: dict[str, str] = {}
    for i, kind in enumerate(kinds):
        if kind == "literal":
            text = draw(literals)
            upstream.append(text)
            path.append(text)
        else:
            params[f"p{i}"] = draw(values)
            upstream.append(f"{{p{i}}}")
            path.append(params[f"p{i}"])
    if catch_all:
        params["rest"] = draw(rests)
        upstream.append("{rest}")
        path.append(params["rest"])
    names = list(params)
    downstream = "/svc" + "".join(f"/x{n}-{{{n}}}" for n in reversed(names))
    expected = "/svc" + "".join(f"/x{n}-{params[n]}" for n in reversed(names))
    return Case("/" + "/".join(upstream), downstream, "/" + "/".join(path), params, expected)


@given(filled_templates())
def test_template_matches_its_filled_paths_and_captures_the_values(case: Case) -> None:
    router = Router([route(case.upstream, case.downstream)])
    result = router.match("GET", None, case.path)
    assert isinstance(result, RouteMatch), case
    assert dict(result.params) == case.params
    assert result.downstream_target(case.path, "") == case.expected_downstream
    assert result.downstream_target(case.path, "q=1") == case.expected_downstream + "?q=1"


def _flip(text: str, flips: list[bool]) -> str:
    padded = (flips + [False] * len(text))[: len(text)]
    return "".join(c.swapcase() if f else c for c, f in zip(text, padded, strict=True))


@given(filled_templates(), st.lists(st.booleans(), max_size=60))
def test_case_flips_still_match_and_values_keep_the_request_case(
    case: Case, flips: list[bool]
) -> None:
    flipped = _flip(case.path, flips)
    result = Router([route(case.upstream, case.downstream)]).match("GET", None, flipped)
    assert isinstance(result, RouteMatch)
    for value in result.params.values():
        assert value in flipped
    assert [v.lower() for v in result.params.values()] == [v.lower() for v in case.params.values()]


@given(filled_templates(), st.lists(st.booleans(), min_size=1, max_size=60))
def test_case_sensitive_routes_refuse_other_cases(case: Case, flips: list[bool]) -> None:
    flipped = _flip(case.path, flips)
    result = Router([route(case.upstream, case.downstream, case_sensitive=True)]).match(
        "GET", None, flipped
    )
    literal_flipped = any(
        a != b for a, b, t in zip(flipped, case.path, _template_mask(case), strict=False) if t
    )
    if literal_flipped:
        assert not isinstance(result, RouteMatch)
    else:
        assert isinstance(result, RouteMatch)


def _template_mask(case: Case) -> list[bool]:
    """For each character of the path: whether it comes from a template literal."""
    mask: list[bool] = []
    for template_segment, path_segment in zip(
        case.upstream.split("/"), case.path.split("/"), strict=False
    ):
        is_literal = not template_segment.startswith("{")
        mask.extend([is_literal] * len(path_segment) + [True])
    rest = len(case.path) - len(mask)
    return mask + [False] * max(rest, 0)


@given(st.lists(literals, min_size=1, max_size=4), st.integers(0, 5), st.integers(0, 3))
def test_static_route_beats_the_catch_all_wherever_it_is_listed(
    segments: list[str], position: int, filler: int
) -> None:
    path = "/" + "/".join(segments)
    specs = [route(f"/zz{i}/{{x}}", "/filler/{x}") for i in range(filler)]
    specs.insert(min(position, len(specs)), route(path, "/static"))
    specs.insert(min(position + 1, len(specs)), route("/{everything}", "/all", priority=0))
    result = Router(specs).match("GET", None, path)
    assert isinstance(result, RouteMatch)
    assert result.downstream_target(path, "") == "/static"


@given(filled_templates(), st.integers(-3, 3))
def test_file_order_breaks_ties_between_equal_priorities(case: Case, priority: int) -> None:
    first = route(case.upstream, "/first", priority=priority)
    second = route(case.upstream, "/second", priority=priority)
    for specs, expected in (([first, second], "/first"), ([second, first], "/second")):
        result = Router(specs).match("GET", None, case.path)
        assert isinstance(result, RouteMatch)
        assert result.downstream_target(case.path, "") == expected


@given(filled_templates(), st.integers(1, 3))
def test_higher_priority_wins_regardless_of_order(case: Case, lead: int) -> None:
    low = route(case.upstream, "/low", priority=0)
    high = route(case.upstream, "/high", priority=lead)
    for specs in ([low, high], [high, low]):
        result = Router(specs).match("GET", None, case.path)
        assert isinstance(result, RouteMatch)
        assert result.downstream_target(case.path, "") == "/high"


ATOMS = ["a", "B", "...", "", "x;..", ".", "..", "a."]
TRICKS = ["%2e", "%2e%2e", ".%2e", "%2f", "..%2f", "%5c", "..;", "%2e%2e;", "%00", "x%2e"]
suffixes = st.lists(st.sampled_from(ATOMS) | st.sampled_from(TRICKS), max_size=6).map("/".join)
json_names = st.sampled_from(["..json", "...json", "%2e.json", "%2e%2e.json", "a.json", ".json"])


@given(suffixes, json_names)
def test_downstream_never_escapes_the_template(suffix: str, json_name: str) -> None:
    router = Router(
        [
            route("/public/{everything}", "/srv/public/{everything}"),
            route("/files/{name}.json", "/srv/files/{name}"),
        ]
    )
    for raw in (f"/public/{suffix}", f"/files/{suffix}/{json_name}", f"/files/{json_name}"):
        try:
            path = canonicalise(raw)
        except PathRejected:
            continue
        result = router.match("GET", None, path)
        if not isinstance(result, RouteMatch):
            continue
        target = result.downstream_target(path, "")
        assert target == "/srv/public" or target.startswith(("/srv/public/", "/srv/files/"))
        assert all(s not in (".", "..") for s in target.split("/")), (raw, target)


# -- query strings ----------------------------------------------------------------------------

param_names = st.sampled_from(["id", "ID", "Id", "%69d", "i%64", "x", "y", "idx", "r", "u", ""])
param_values = st.text(alphabet="ab%2F+=?", max_size=4)
queries = st.lists(
    st.tuples(param_names, st.booleans(), param_values).map(
        lambda p: f"{p[0]}={p[2]}" if p[1] else p[0]
    ),
    max_size=6,
)


def _name(item: str) -> str:
    return unquote_plus(item.partition("=")[0])


def _with_query(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


@given(queries)
def test_without_a_downstream_query_only_placeholder_named_parameters_go(items: list[str]) -> None:
    """Ocelot's removal of parameters named like a placeholder, in any letter case; every
    other item goes unchanged and in order (all of the query, when none is removed)."""
    query = "&".join(items)
    result = Router([route("/a/{id}", "/b/{id}")]).match("GET", None, "/a/1", query)
    assert isinstance(result, RouteMatch)
    kept = [i for i in items if _name(i).lower() != "id"]
    expected = query if len(kept) == len(items) else "&".join(kept) if "".join(kept) else ""
    assert result.downstream_target("/a/1", query) == _with_query("/b/1", expected)


@given(queries)
def test_merged_query_has_each_remaining_parameter_once(items: list[str]) -> None:
    """Ocelot's merging: template parameters first, then the request's parameters except
    those named exactly like a placeholder or a template parameter."""
    query = "&".join(items)
    result = Router([route("/a/{id}", "/b?x={id}")]).match("GET", None, "/a/1", query)
    assert isinstance(result, RouteMatch)
    rest = [i for i in items if i and _name(i) not in ("id", "x")]
    assert result.downstream_target("/a/1", query) == _with_query("/b", "&".join(["x=1", *rest]))


@given(param_values, queries)
def test_a_carried_parameter_goes_once(first: str, items: list[str]) -> None:
    """Issue 11, item 6: a parameter an upstream query item carries whole into the downstream
    query is not appended again; the request's other parameters go once each."""
    carried = f"c={first}"
    query = "&".join(["u=user", carried, *items])
    router = Router([route("/w/{r}?u={u}&{e}", "/d/{u}?r={r}&{e}")])
    result = router.match("GET", None, "/w/7", query)
    assert isinstance(result, RouteMatch)
    rest = [i for i in items if i and _name(i) not in ("r", "u", "e")]
    expected = "&".join(["r=7", carried, *rest])
    assert result.downstream_target("/w/7", query) == _with_query("/d/user", expected)
