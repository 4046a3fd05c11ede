"""Tracing settings: the native ``tracing`` block, the ``--otlp-*`` flags, and their errors
(file, key path, what is wrong)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from propylon.cli import main
from propylon.config.loader import load_config
from propylon.config.model import ConfigError, GatewayConfig, TracingSpec
from propylon.config.tracing import sdk_problem, traces_url, with_tracing_flags

ROUTES = """
routes:
  - path: /users/{id}
    downstream: {hosts: ["users:8000"]}
"""


def load(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return load_config(str(path), env={})


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return [str(p) for p in caught.value.problems]


def test_no_block_means_propagation_only(tmp_path: Path) -> None:
    assert load(tmp_path, "propylon: 1" + ROUTES).tracing == TracingSpec(
        otlp_endpoint=None, sample_ratio=1.0, service_name="propylon"
    )


def test_the_block_is_read_and_a_bare_endpoint_gets_the_traces_path(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "propylon: 1\ntracing: {otlp_endpoint: 'http://collector:4318', sample_ratio: 0.25,"
        " service_name: edge}" + ROUTES,
    )
    assert config.tracing == TracingSpec("http://collector:4318/v1/traces", 0.25, "edge")
    config = load(
        tmp_path,
        "tracing: {otlp_endpoint: 'https://c.example/otlp/spans', sample_ratio: 1}" + ROUTES,
    )
    assert config.tracing.otlp_endpoint == "https://c.example/otlp/spans"
    assert config.tracing.sample_ratio == 1.0


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("{otlp_endpoint: 'collector:4318'}", "tracing.otlp_endpoint: error: expected an http"),
        ("{otlp_endpoint: 'http://:4318'}", "tracing.otlp_endpoint: error: the URL names no host"),
        ("{otlp_endpoint: 'http://c:99999'}", "tracing.otlp_endpoint: error: not a URL"),
        ("{otlp_endpoint: 'http://u:p@c:4318'}", "tracing.otlp_endpoint: error: credentials"),
        ("{sample_ratio: 1.5}", "tracing.sample_ratio: error:"),
        ("{sample_ratio: '0.5'}", "tracing.sample_ratio: error:"),
        ("{service_name: ''}", "tracing.service_name: error:"),
        ("{otlp_endpoit: 'http://c:4318'}", "tracing.otlp_endpoit: error:"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, block: str, expected: str) -> None:
    found = problems(tmp_path, f"tracing: {block}" + ROUTES)
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'gateway.yaml'}: {expected}"), found


def test_flags_win_over_the_file_and_name_themselves_when_wrong(tmp_path: Path) -> None:
    config = load(tmp_path, "tracing: {otlp_endpoint: 'http://a:4318', sample_ratio: 0.5}" + ROUTES)
    flagged = with_tracing_flags(config, endpoint="http://b:4318/", sample_ratio=None)
    assert flagged.tracing == TracingSpec("http://b:4318/v1/traces", 0.5)
    flagged = with_tracing_flags(config, endpoint=None, sample_ratio="0")
    assert flagged.tracing == TracingSpec("http://a:4318/v1/traces", 0.0)
    assert with_tracing_flags(config, endpoint=None, sample_ratio=None) is config
    for endpoint, ratio, expected in [
        ("ftp://c", None, "--otlp-endpoint: error: expected an http"),
        (None, "2", "--otlp-sample-ratio: error: expected a number from 0 to 1"),
        (None, "half", "--otlp-sample-ratio: error: expected a number from 0 to 1"),
        (None, "nan", "--otlp-sample-ratio: error: expected a number from 0 to 1"),
    ]:
        with pytest.raises(ConfigError) as caught:
            with_tracing_flags(config, endpoint=endpoint, sample_ratio=ratio)
        assert str(caught.value).startswith(expected)


def test_check_validates_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ocelot.json"
    route = {
        "UpstreamPathTemplate": "/a",
        "DownstreamPathTemplate": "/a",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": 9}],
    }
    path.write_text(json.dumps({"Routes": [route]}))
    assert main(["check", str(path), "--otlp-endpoint", "http://127.0.0.1:4318"]) == 0
    assert main(["check", str(path), "--otlp-sample-ratio", "-1"]) == 1
    assert "--otlp-sample-ratio: error:" in capsys.readouterr().out


def test_the_sdk_is_found_where_the_otlp_extra_is_installed(tmp_path: Path) -> None:
    config = load(tmp_path, "tracing: {otlp_endpoint: 'http://a:4318'}" + ROUTES)
    assert sdk_problem(config) is None  # the test environment installs [otlp]
    assert traces_url(" http://a:4318 ") == "http://a:4318/v1/traces"


def test_a_missing_part_of_the_otlp_extra_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load(tmp_path, "tracing: {otlp_endpoint: 'http://a:4318'}" + ROUTES)
    monkeypatch.setitem(sys.modules, "urllib3", None)  # as if it were not installed
    problem = sdk_problem(config)
    assert problem is not None
    assert problem.path == "tracing.otlp_endpoint"
    assert problem.message == "exporting spans needs urllib3: pip install 'propylon[otlp]'"
