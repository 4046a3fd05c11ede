"""Reading files: .NET-style JSON, YAML, positions of syntax errors, repeated keys, detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from propylon.config.detect import detect_format
from propylon.config.document import duplicate_keys, parse_text, read_document
from propylon.config.jsonc import relax
from propylon.config.model import ConfigError, ConfigFormat


def problems_of(call: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        assert callable(call)
        call()
    return [str(p) for p in caught.value.problems]


def test_json_comments_and_trailing_commas_are_accepted_like_dotnet() -> None:
    text = """{
      "Routes": [ // one route
        { "UpstreamPathTemplate": "http://x//y", /* a URL-looking string stays */ },
      ],
    }"""
    doc = parse_text("Routes.json", text)
    assert doc.data == {"Routes": [{"UpstreamPathTemplate": "http://x//y"}]}


def test_relax_keeps_line_and_column_positions() -> None:
    text = '{"a": 1, // c\n "b": [1,],\n}'
    relaxed = relax(text)
    assert len(relaxed) == len(text)
    assert relaxed.count("\n") == 2
    assert '"a\\" // not a comment"' in relax('{"x": "a\\" // not a comment"}')


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('ab/*,]} "\\\n')),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet="/*,}] x", max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(_JSON)
def test_relax_never_changes_valid_json(value: object) -> None:
    for text in (json.dumps(value), json.dumps(value, indent=2)):
        assert relax(text) == text


def test_json_syntax_error_names_file_line_and_column() -> None:
    assert problems_of(lambda: parse_text("o.json", '{\n  "Routes": [\n    {"a" 1}\n  ]\n}')) == [
        "o.json:3:10: error: invalid JSON: Expecting ':' delimiter"
    ]


def test_yaml_syntax_error_names_file_line_and_column() -> None:
    found = problems_of(lambda: parse_text("c.yaml", "routes:\n  - path: /a\n   bad: [\n"))
    assert len(found) == 1
    assert found[0].startswith("c.yaml:3:")
    assert "invalid YAML" in found[0]


def test_unknown_extension_tries_json_then_yaml() -> None:
    assert parse_text("conf", '{"a": 1}').syntax == "json"
    assert parse_text("conf", "a: 1\n").data == {"a": 1}


def test_repeated_keys_are_errors_with_their_path() -> None:
    doc = parse_text("s.yaml", "- method: get\n  auth_required: true\n  auth_required: false\n")
    assert [str(p) for p in duplicate_keys(doc)] == [
        "s.yaml: [0].auth_required: error: key given more than once"
    ]
    doc = parse_text("o.json", '{"GlobalConfiguration": {"BaseUrl": "a", "BaseUrl": "b"}}')
    assert [p.path for p in duplicate_keys(doc)] == ["GlobalConfiguration.BaseUrl"]


def test_yaml_merge_keys_may_be_overridden() -> None:
    doc = parse_text("n.yaml", "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n")
    assert duplicate_keys(doc) == []
    assert doc.data == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}}


def test_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    assert problems_of(lambda: read_document(missing)) == [
        f"{missing}: error: cannot read the file: No such file or directory"
    ]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: \xe9\n")
    assert "not UTF-8" in problems_of(lambda: read_document(str(latin)))[0]


def test_utf8_bom_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ocelot.json"
    path.write_bytes(b'\xef\xbb\xbf{"Routes": []}')
    assert read_document(str(path)).data == {"Routes": []}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([{"method": "get"}], ConfigFormat.SEED),
        ([], ConfigFormat.SEED),
        ({"propylon": 1, "Routes": []}, ConfigFormat.NATIVE),
        ({"Routes": []}, ConfigFormat.OCELOT),
        ({"ReRoutes": []}, ConfigFormat.OCELOT),
        ({"globalConfiguration": {}}, ConfigFormat.OCELOT),
        ({"routes": [{"upstreamPathTemplate": "/a"}]}, ConfigFormat.OCELOT),
        ({"ROUTES": [{"DownstreamHostAndPorts": []}]}, ConfigFormat.OCELOT),
        ({"routes": [{"path": "/a", "downstream": {}}]}, ConfigFormat.NATIVE),
        ({"Routes": [{"path": "/a"}]}, ConfigFormat.NATIVE),
        ({"routes": []}, ConfigFormat.NATIVE),
        ({"limits": {}}, ConfigFormat.NATIVE),
        ("text", ConfigFormat.NATIVE),
    ],
)
def test_format_detection(data: object, expected: ConfigFormat) -> None:
    assert detect_format(data) is expected
