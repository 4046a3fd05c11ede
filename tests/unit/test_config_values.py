"""Shared value checks: hosts, ports, methods, headers, CIDRs and templates."""

from __future__ import annotations

import re

import pytest

from propylon.config import templates, values
from propylon.config.model import DownstreamHost


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("svc", DownstreamHost("svc", 80)),
        ("svc:8080", DownstreamHost("svc", 8080)),
        ("my_service.internal:1", DownstreamHost("my_service.internal", 1)),
        ("10.0.0.1:9", DownstreamHost("10.0.0.1", 9)),
        ("[::1]:8443", DownstreamHost("::1", 8443)),
        ("[fe80::1]", DownstreamHost("fe80::1", 80)),
        ("::1", DownstreamHost("::1", 80)),
    ],
)
def test_host_and_port_forms(text: str, expected: DownstreamHost) -> None:
    assert values.host_and_port(text, 80) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://svc", "write host:port without a scheme"),
        ("svc:http", "port must be a number"),
        ("svc:65536", "port must be 1-65535, got 65536"),
        ("bad host", "not a valid host name"),
        ("[::1", "unclosed '['"),
        ("svc/path", "not a URL or path"),
        ("-svc", "not a valid host name"),
    ],
)
def test_bad_hosts(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        values.host_and_port(text, 80)


def test_methods() -> None:
    assert values.http_method(" patch ") == "PATCH"
    for refused in ("TRACE", "connect"):
        with pytest.raises(ValueError, match="not proxied"):
            values.http_method(refused)
    with pytest.raises(ValueError, match="unknown HTTP method"):
        values.http_method("PURGE")


def test_schemes() -> None:
    assert values.scheme("HTTPS") == "https"
    with pytest.raises(ValueError, match="use https"):
        values.scheme("wss")


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "content-length",
        "CONNECTION",
        "Authorization",
        "Transfer-Encoding",
        "x-forwarded-for",
        "Cookie",
    ],
)
def test_identity_header_refuses_framing_and_owned_headers(name: str) -> None:
    with pytest.raises(ValueError, match="cannot carry the caller's identity"):
        values.identity_header(name)


def test_identity_header_accepts_tokens_only() -> None:
    assert values.identity_header("X-User-Id") == "X-User-Id"
    with pytest.raises(ValueError, match="RFC 9110 token"):
        values.identity_header("X User")


def test_cidrs() -> None:
    assert values.cidr("10.1.0.0/16") == "10.1.0.0/16"
    assert values.cidr("::1") == "::1/128"
    with pytest.raises(ValueError, match=re.escape("did you mean 192.168.1.0/24")):
        values.cidr("192.168.1.7/24")


def test_upstream_host_keeps_a_port() -> None:
    assert values.upstream_host("api.example.com") == "api.example.com"
    assert values.upstream_host("api.example.com:8443") == "api.example.com:8443"


def test_template_placeholders() -> None:
    assert templates.check_upstream("/a/{id}/b/{rest}?q={q}") == ["id", "rest", "q"]
    for bad, message in (
        ("/a/{id", "unbalanced"),
        ("/a/{}", "empty placeholder"),
        ("/a/{x}/{X}", "appears twice"),
        ("/a/}x{", "unbalanced"),
    ):
        with pytest.raises(ValueError, match=message):
            templates.check_upstream(bad)
    templates.check_downstream("/b/{ID}", ["id"], "x")  # names compare case-insensitively
    with pytest.raises(ValueError, match=r"placeholder \{y\} is not captured"):
        templates.check_downstream("/b/{y}", ["id"], "x")


def test_catch_all_shape() -> None:
    assert templates.is_catch_all("/{everything}")
    assert not templates.is_catch_all("/api/{everything}")
    assert not templates.is_catch_all("/{a}/{b}")
    assert not templates.is_catch_all("/{a}x")
