"""The Host header a downstream service receives names the configured host and port."""

from __future__ import annotations

import pytest

from propylon.upstream.pool import UpstreamPool
from propylon.stats import UpstreamStats


@pytest.mark.parametrize(
    ("scheme", "host", "port", "expected"),
    [
        ("http", "profiles", 8080, b"profiles:8080"),
        ("http", "profiles", 80, b"profiles"),
        ("https", "api.example", 443, b"api.example"),
        ("https", "api.example", 80, b"api.example:80"),
        ("http", "10.0.0.2", 9000, b"10.0.0.2:9000"),
        # RFC 9110 s.7.2 / RFC 3986 s.3.2.2: an IPv6 literal is bracketed.
        ("http", "::1", 8080, b"[::1]:8080"),
        ("http", "fe80::1", 80, b"[fe80::1]"),
    ],
)
def test_host_header_of_each_downstream(scheme: str, host: str, port: int, expected: bytes) -> None:
    pool = UpstreamPool(
        scheme,
        host,
        port,
        max_idle=1,
        connect_timeout=1.0,
        idle_timeout=1.0,
        stats=UpstreamStats(),
    )
    assert pool.host_header == expected
