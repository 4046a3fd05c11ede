"""Host validation (security review, item 9): RFC 9112 s.3.2 / RFC 3986 s.3.2.2."""

from __future__ import annotations

import pytest

from propylon.http.host import HostCheck, HostRejected


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        (b"api.example.com", b"api.example.com"),
        (b"api.example.com:8443", b"api.example.com:8443"),
        (b"api.example.com.", b"api.example.com"),
        (b"API.example.com.:80", b"API.example.com:80"),
        (b"127.0.0.1:8000", b"127.0.0.1:8000"),
        (b"[::1]:8080", b"[::1]:8080"),
        (b"[2001:db8::7]", b"[2001:db8::7]"),
        (b"gateway_1", b"gateway_1"),
        (b"xn--bcher-kva.example", b"xn--bcher-kva.example"),
        (b"", b""),
    ],
)
def test_acceptable_hosts_and_their_normal_form(value: bytes, normal: bytes) -> None:
    check = HostCheck()
    assert check.normalise(value) == normal
    assert check.normalise(value) == normal  # remembered


@pytest.mark.parametrize(
    "value",
    [
        b"a\xff\xfeb c",
        b"a b",
        b"evil.com/path",
        b"evil.com?x",
        b"user@evil.com",
        b"[::1",
        b"[not-v6]:80",
        b"::1:8080",
        b"host:99999",
        b"host:80:80",
        b"a" * 300,
        b"host\\x",
    ],
)
def test_unacceptable_hosts_are_refused(value: bytes) -> None:
    with pytest.raises(HostRejected):
        HostCheck().normalise(value)
