"""Request-path canonicalisation (design.md s.4 "Paths"): what the router and the downstream see."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from propylon.paths import PathRejected, canonicalise

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("/api/users", "/api/users"),
        ("/a//b", "/a/b"),
        ("///a///b///", "/a/b/"),
        ("/a/./b/../c", "/a/c"),
        ("/a/b/", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/..", "/"),
        ("/admin/../public/x", "/public/x"),
        ("/%7Euser/%61%2d%5F", "/~user/a-_"),
        ("/a/%2e%2e%2e", "/a/..."),
        ("/a%2eb/c", "/a.b/c"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/a/%20b%3f", "/a/%20b%3F"),
        ("/Users/ME", "/Users/ME"),
        ("/a;b=1/c;..", "/a;b=1/c;.."),
        ("/a/...", "/a/..."),
        ("/a/%25", "/a/%25"),
        ("/a/%2525", "/a/%2525"),
    ],
)
def test_canonical_form(raw: str, canonical: str) -> None:
    assert canonicalise(raw) == canonical


@pytest.mark.parametrize("raw", ["/a/%252e%252e", "/a/%252E", "/a%252fb", "/a/%255Cb", "/%252f"])
def test_double_encoded_dots_and_separators_are_refused_unless_allowed(raw: str) -> None:
    """Security review item 8: a downstream that decodes twice would read a dot segment or
    a separator; refused by default, as Envoy does."""
    with pytest.raises(PathRejected, match="double-encoded"):
        canonicalise(raw)
    assert canonicalise(raw, allow_double_encoding=True) == raw


@pytest.mark.parametrize(
    "raw",
    [
        "/a/%2F/b",
        "/a%2fb",
        "/a%5cb",
        "/a\\b",
        "/public/..\\admin",
        "/a/%2e",
        "/a/%2E%2e/b",
        "/a/.%2e/b",
        "/a/%2e./b",
        "/public/%2e%2e/admin",
        "/..",
        "/../admin",
        "/a/../..",
        "/a/..;/b",
        "/a/.;/b",
        "/a/..;jsessionid=1/b",
        "/a/%2e%2e;/b",
        # Security review (#11 item 2): dot segments whose parameters are encoded.
        "/profiles/%2e%2e%3b",
        "/profiles/..%3B",
        "/profiles/..%3b",
        "/a/.%3b/b",
        "/a/..%3Bx/b",
        "/a/%2E%2E%3B/b",
        "/a/%00",
        "/a/%1f",
        "/a/%7F",
        "/a/\x00",
        "/a/\tb",
        "/a b",
        "/a/\x7f",
        "/caf\u00e9",
        "/a/%",
        "/a/%4",
        "/a/%zz",
        "/a/%g0",
        "a/b",
        "*",
        "http://example.com/a",
        "/a?b",
        "/a#b",
    ],
)
def test_ambiguous_or_malformed_paths_are_rejected(raw: str) -> None:
    with pytest.raises(PathRejected) as caught:
        canonicalise(raw)
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason


# -- properties -------------------------------------------------------------------------------

PATHISH = st.lists(
    st.sampled_from(
        [
            *"/./..;%2eEfF5cC0aZ~-_",
            "%2e",
            "%2F",
            "%5C",
            "%00",
            "\\",
            "\x01",
            "\u00e9",
            "//",
            # An encoded ";" ends a segment for Tomcat, Spring and Jetty (#11 item 2).
            "%3b",
            "%3B",
        ]
    ),
    max_size=40,
).map(lambda parts: "/" + "".join(parts))

# Where a server that takes path parameters off a segment (Tomcat, Spring, Jetty) cuts it.
_PARAMETERS = re.compile(r";|%3b", re.IGNORECASE)


def _as_parameter_cutting_server_reads(segment: str) -> str:
    """``segment`` as such a server resolves it: its parameters cut off, then decoded."""
    return unquote(_PARAMETERS.split(segment, maxsplit=1)[0])


def _assert_no_dot_segment_in_disguise(out: str) -> None:
    for segment in out.split("/")[1:]:
        assert _as_parameter_cutting_server_reads(segment) not in (".", ".."), out


BAD_OUTPUT = re.compile(r"//|\\|%2[EeFf]|%5[Cc]|[\x00-\x20\x7f]|[^\x00-\x7f]")


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _attempt(raw: str) -> str | None:
    try:
        return canonicalise(raw)
    except PathRejected:
        return None


@given(PATHISH)
@example("/a/%2e%2e%2e/")
@example("/a/./%7e")
def test_canonicalise_is_idempotent(raw: str) -> None:
    once = _attempt(raw)
    if once is not None:
        assert canonicalise(once) == once


@given(PATHISH)
def test_output_has_no_separator_or_dot_tricks_left(raw: str) -> None:
    out = _attempt(raw)
    if out is None:
        return
    assert out.startswith("/")
    assert BAD_OUTPUT.search(out) is None, out
    _assert_no_dot_segment_in_disguise(out)


@st.composite
def encoded_paths(draw: st.DrawFn) -> tuple[str, str]:
    """A plain path of unreserved characters and the same path with escapes in random places."""
    segments = draw(
        st.lists(
            st.text(alphabet=UNRESERVED, min_size=1, max_size=8).filter(
                lambda s: s not in (".", "..")
            ),
            max_size=5,
        )
    )
    plain = "/" + "/".join(segments) + draw(st.sampled_from(["", "/"]))
    encoded = "".join(
        draw(st.sampled_from([f"%{ord(c):02x}", f"%{ord(c):02X}", c])) if c != "/" else c
        for c in plain
    )
    return plain, encoded


@given(encoded_paths())
def test_encoded_unreserved_characters_mean_the_plain_ones(pair: tuple[str, str]) -> None:
    plain, encoded = pair
    assert canonicalise(encoded) == canonicalise(plain)


ATTACK_ATOMS = [
    "a",
    "B",
    "...",
    "",
    ";",
    "x;..",
    "..",
    ".",
    "..;",
    ".;",
    "%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    "%2e%2e;",
    "x%2e",
    "%2f",
    "..%2f",
    "%2F..",
    "%5c..",
    "..\\",
    "%252e%252e",
    "%00",
    "..%3B",
    ".%3b",
    "%2e%2e%3B",
    "..%3bx",
    ".;x",
    "%3b",
    "%3B",
    "..%3b%3b",
    "%2E%3Bx",
]
# Harmless atoms weigh more, so that many suffixes survive and the invariants get exercised.
SUFFIXES = st.lists(
    st.one_of(
        st.sampled_from(["a", "B", "...", "", "x;..", ".", ".."]), st.sampled_from(ATTACK_ATOMS)
    ),
    max_size=8,
).map("/".join)


def _raw_dot_segments(suffix: str) -> list[str]:
    dots = (".", "..")
    return [s for s in suffix.split("/") if s.partition(";")[0] in dots]


@given(SUFFIXES)
@example("%2e%2e/admin")
@example("..%2fadmin")
@example("..;/admin")
def test_encoded_tricks_never_leave_the_prefix(suffix: str) -> None:
    """Only a literal dot segment moves up a level: encodings are refused, never resolved."""
    out = _attempt("/api/public/" + suffix)
    if out is not None and not _raw_dot_segments(suffix):
        assert out.startswith("/api/public/"), (suffix, out)


@given(SUFFIXES)
def test_no_segment_is_a_dot_segment_to_a_server_that_cuts_parameters(suffix: str) -> None:
    """#11 item 2: ``..%3B`` went upstream, and Tomcat, Spring and Jetty read it as ``..``.
    Whatever the canonicaliser lets through holds no segment that is a dot segment once
    cut at ``;`` or ``%3B`` (any case) and decoded."""
    out = _attempt("/api/public/" + suffix)
    if out is not None:
        _assert_no_dot_segment_in_disguise(out)


@given(SUFFIXES)
def test_each_literal_dot_dot_climbs_at_most_one_level(suffix: str) -> None:
    out = _attempt("/api/public/" + suffix)
    if out is not None:
        climbs = sum(1 for s in _raw_dot_segments(suffix) if s == "..")
        kept_prefix = _segments(out)[: max(0, 2 - climbs)]
        assert kept_prefix == ["api", "public"][: len(kept_prefix)]
        assert len(_segments(out)) >= 2 - climbs
