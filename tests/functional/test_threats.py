"""design.md s.4, end to end: each threat, and what the upstream did (not) receive."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from types import MappingProxyType

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from propylon.config.model import AuthRequirement, JwtProviderSpec, Limits
from tests.support.client import exchange_raw, request
from tests.support.gateway import BEARER, SECRET, config, route, running, token
from tests.support.upstreams import RecordingUpstream


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# -- JWT ---------------------------------------------------------------------------------------


async def _auth_status(headers: list[tuple[str, str]], target: str = "/p") -> tuple[int, int]:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/p", up.port, auth=BEARER))) as gw:
            r = await request(gw.port, "GET", target, headers)
            return r.status, len(up.seen)
    finally:
        await up.close()


async def test_alg_none_is_refused() -> None:
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'root', 'exp': 4102444800})}."
    assert await _auth_status([("Authorization", f"Bearer {forged}")]) == (401, 0)


async def test_missing_and_expired_exp_and_future_nbf_are_refused() -> None:
    no_exp = jwt.encode({"sub": "a"}, SECRET, algorithm="HS256")
    expired = token(ttl=-60)
    future = token(nbf=int(time.time()) + 3600)
    for t in (no_exp, expired, future):
        assert await _auth_status([("Authorization", f"Bearer {t}")]) == (401, 0)


async def test_token_in_query_string_is_not_accepted() -> None:
    t = token()
    assert await _auth_status([], f"/p?access_token={t}") == (401, 0)


async def test_duplicate_authorization_headers_are_refused() -> None:
    t = token()
    headers = [("Authorization", f"Bearer {t}"), ("Authorization", f"Bearer {t}")]
    assert await _auth_status(headers) == (401, 0)


async def test_scheme_is_case_insensitive_and_other_schemes_fail() -> None:
    t = token()
    assert await _auth_status([("Authorization", f"bEaReR {t}")]) == (200, 1)
    assert await _auth_status([("Authorization", f"Basic {t}")]) == (401, 0)


async def test_hs_rs_key_confusion_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/p", up.port, auth=AuthRequirement(providers=("rsa",))))
        providers = {"rsa": JwtProviderSpec(name="rsa", algorithms=("RS256",), public_key_pem=pem)}
        cfg = replace(cfg, providers=MappingProxyType(providers))
        async with running(cfg) as gw:
            now = int(time.time())
            claims = {"sub": "mallory", "exp": now + 60}
            # HMAC "signed" with the public key as the secret: the classic confusion attack.
            header = _b64({"alg": "HS256", "typ": "JWT"})
            body = _b64(claims)
            sig = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
            forged = f"{header}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
            r = await request(gw.port, "GET", "/p", [("Authorization", f"Bearer {forged}")])
            assert r.status == 401 and not up.seen
            good = jwt.encode(claims, key, algorithm="RS256")
            r = await request(gw.port, "GET", "/p", [("Authorization", f"Bearer {good}")])
            assert r.status == 200 and up.last.header("User") == "mallory"
    finally:
        await up.close()


async def test_scopes_and_claims_give_403_without_reaching_upstream() -> None:
    up = await RecordingUpstream().start()
    try:
        need = AuthRequirement(
            providers=("Bearer",),
            allowed_scopes=("profiles:write", "admin"),
            required_claims=(("role", "admin"),),
        )
        async with running(config(route("/p", up.port, auth=need))) as gw:
            weak = token(scope="profiles:read", role="admin")
            r = await request(gw.port, "GET", "/p", [("Authorization", f"Bearer {weak}")])
            assert r.status == 403 and r.json()["codemessage"] == "Restricted"  # type: ignore[index]
            user = token(scope="profiles:write", role="user")
            r = await request(gw.port, "GET", "/p", [("Authorization", f"Bearer {user}")])
            assert r.status == 403
            assert not up.seen
            ok = token(scp=["admin"], role=["user", "admin"])
            r = await request(gw.port, "GET", "/p", [("Authorization", f"Bearer {ok}")])
            assert r.status == 200 and len(up.seen) == 1
    finally:
        await up.close()


# -- Identity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["User", "user", "USER", "uSeR"])
async def test_spoofed_identity_header_never_reaches_upstream(name: str) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/public", up.port), route("/private", up.port, auth=BEARER))
        async with running(cfg) as gw:
            await request(gw.port, "GET", "/public", [(name, "admin")])
            assert up.last.headers_named("User") == []
            await request(
                gw.port,
                "GET",
                "/private",
                [(name, "admin"), ("Authorization", f"Bearer {token('alice')}")],
            )
            assert up.last.headers_named("User") == ["alice"]
    finally:
        await up.close()


async def test_connection_listed_authorization_is_not_used_or_forwarded() -> None:
    t = token()
    headers = [("Connection", "Authorization"), ("Authorization", f"Bearer {t}")]
    assert await _auth_status(headers) == (401, 0)


# -- Paths -------------------------------------------------------------------------------------


PATH_ATTACKS = [
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
    # A dot segment once its path parameters (";" encoded or not) are cut off (#11 item 2).
    "/public/%2e%2e%3b",
    "/public/..%3B",
    "/public/..%3bx/admin",
    "/public/.%3b/x",
    # Double-encoded: a downstream that decodes twice reads ".." (#10 item 8).
    "/public/%252e%252e/admin",
]


@pytest.mark.parametrize("target", PATH_ATTACKS)
async def test_path_tricks_are_rejected_or_stay_inside_the_template(target: str) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/public/{everything}", up.port, "/srv/public/{everything}"))
        async with running(cfg) as gw:
            r = await request(gw.port, "GET", target)
            assert r.status in (400, 404), (target, r.status)
            for seen in up.seen:
                assert seen.raw_path.startswith("/srv/public/")
                assert ".." not in seen.raw_path and "%2f" not in seen.raw_path.lower()
    finally:
        await up.close()


async def test_dot_segments_and_double_slashes_are_resolved_before_matching() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/public/{everything}", up.port, "/srv/{everything}"))
        async with running(cfg) as gw:
            r = await request(gw.port, "GET", "/public//a/./b/../c")
            assert r.status == 200 and up.last.raw_path == "/srv/a/c"
            r = await request(gw.port, "GET", "/admin/../public/x")
            assert r.status == 200 and up.last.raw_path == "/srv/x"
            r = await request(gw.port, "GET", "/public/../admin")
            assert r.status == 404
    finally:
        await up.close()


async def test_case_tricks_match_case_insensitively_but_keep_values() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/Admin/{id}", up.port, "/admin/{id}", auth=BEARER),
            route("/{everything}", up.port, "/pub/{everything}", priority=0),
        )
        async with running(cfg) as gw:
            r = await request(gw.port, "GET", "/aDMIN/Xy")
            assert r.status == 401  # the protected route still matches: no bypass by case
            assert not up.seen
    finally:
        await up.close()


# -- Framing -----------------------------------------------------------------------------------


FRAMING_ATTACKS = [
    # CL + TE together
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    # duplicate, differing Content-Length
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
    # obs-fold
    b"GET /x HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
    # bare LF line endings
    b"GET /x HTTP/1.1\nHost: t\n\n",
    # bare CR inside a header
    b"GET /x HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
    # Transfer-Encoding other than chunked
    b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n",
    # space before the colon
    b"GET /x HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello",
    # two Host headers
    b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    # HTTP/1.1 without Host
    b"GET /x HTTP/1.1\r\n\r\n",
]


@pytest.mark.parametrize("data", FRAMING_ATTACKS)
async def test_ambiguous_framing_is_refused_and_nothing_smuggled(data: bytes) -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port), route("/smuggled", up.port))) as gw:
            _responses, raw, closed = await exchange_raw(gw.port, data, expect=2, timeout=2)
            assert raw.startswith(b"HTTP/1.1 400") or raw.startswith(b"HTTP/1.1 501"), raw[:80]
            assert closed
            assert all(s.raw_path != "/smuggled" for s in up.seen)
            assert not up.seen
    finally:
        await up.close()


async def test_pipelined_requests_each_framed_by_the_gateway() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port), route("/y", up.port))) as gw:
            data = (
                b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                b"GET /y HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            responses, _raw, _closed = await exchange_raw(gw.port, data, expect=2)
            assert [r.status for r in responses] == [200, 200]
            assert [(s.method, s.raw_path, s.body) for s in up.seen] == [
                ("POST", "/x", b"hello"),
                ("GET", "/y", b""),
            ]
    finally:
        await up.close()


# -- Limits ------------------------------------------------------------------------------------


async def test_a_head_within_the_header_limit_fits_however_it_is_cut_into_reads() -> None:
    """The header limit counted a header's bytes twice when the head came in several reads
    (the raw bytes read, and the header once parsed): a head of 3 KiB against a 4 KiB limit
    was a 431 when its last header ended in a later read than it began. Found by the
    long-Host flood of test_memory_bounds.py, where it depended on TCP's segmentation."""
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port), limits=Limits(max_header_bytes=4096))
        async with running(cfg) as gw:
            head = b"GET /x HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 3000 + b"\r\n"
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            try:
                writer.write(head)
                await writer.drain()
                await asyncio.sleep(0.1)
                writer.write(b"\r\n")
                answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            finally:
                writer.close()
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            assert up.last.header("X-Big") == "a" * 3000
    finally:
        await up.close()


async def test_huge_headers_get_431_and_long_url_414() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port), limits=Limits(max_header_bytes=4096, max_headers=20))
        async with running(cfg) as gw:
            big = b"GET /x HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n"
            _r, raw, closed = await exchange_raw(gw.port, big)
            assert raw.startswith(b"HTTP/1.1 431") and closed
            many = (
                b"GET /x HTTP/1.1\r\nHost: t\r\n"
                + b"".join(b"X-H%d: v\r\n" % i for i in range(30))
                + b"\r\n"
            )
            _r, raw, closed = await exchange_raw(gw.port, many)
            assert raw.startswith(b"HTTP/1.1 431")
            long_url = b"GET /x?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
            _r, raw, closed = await exchange_raw(gw.port, long_url)
            assert raw.startswith(b"HTTP/1.1 414")
            assert not up.seen
    finally:
        await up.close()


async def test_slow_headers_hit_the_deadline() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port), limits=Limits(header_timeout=0.5))
        async with running(cfg) as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"GET /x HTTP/1.1\r\nHost: t\r\n")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            data = await asyncio.wait_for(reader.read(), 5)
            assert data.startswith(b"HTTP/1.1 408")
            assert loop.time() - t0 < 3
            writer.close()
            # An idle connection that never starts a request is closed silently.
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            assert not up.seen
    finally:
        await up.close()


async def test_connection_flood_is_survived() -> None:
    """200 idle connections opened at once, then a normal request still works (bounded)."""
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port), limits=Limits(header_timeout=1.0))
        async with running(cfg) as gw:
            conns = [await asyncio.open_connection("127.0.0.1", gw.port) for _ in range(200)]
            r = await request(gw.port, "GET", "/x")
            assert r.status == 200
            for _reader, writer in conns:
                writer.close()
    finally:
        await up.close()


@pytest.mark.parametrize(
    "data",
    [b"GET /x\r\n\r\n", b"GET /x HTTP/0.9\r\n\r\n", b"GET /x HTTP/2.0\r\nHost: t\r\n\r\n"],
)
async def test_http09_and_unknown_versions_are_refused_and_reach_nobody(data: bytes) -> None:
    """#11 item 5: a request line without a version used to be proxied."""
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            responses, _raw, closed = await exchange_raw(gw.port, data)
            assert [r.status for r in responses] == [400]
            assert closed
            assert up.seen == []
    finally:
        await up.close()


async def _answer_to_reads(port: int, reads: list[bytes], within: float) -> tuple[bytes, float]:
    """Send each of ``reads`` in its own write (paused between, so that the gateway reads
    them apart); return all the gateway sent until it closed, and how long that took. A
    gateway that keeps the connection open past ``within`` fails the test."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, part in enumerate(reads):
            if i:
                await asyncio.sleep(0.1)
            writer.write(part)
            await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), within)  # read() returns at EOF only
        return answer, time.monotonic() - started
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """Read one response framed by Content-Length (the gateway's JSON answers are); return
    its head."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await asyncio.wait_for(reader.readexactly(length), 5.0)
    return head


@pytest.mark.parametrize(
    "reads",
    [[b"GET /x\r\n"], [b"GET /x\n"], [b"GET /x", b"\r\n"], [b"GET /x\r", b"\n"]],
    ids=["crlf", "lf", "line-end-apart", "lf-apart"],
)
async def test_a_real_http09_client_is_refused_at_once(reads: list[bytes]) -> None:
    """A 0.9 client sends its request line and one line end, then waits: llhttp goes on
    reading header lines, and the gateway used to answer only at the header deadline (10 s,
    a 408). It is a 400 at once, the connection closed, nothing sent upstream."""
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            answer, took = await _answer_to_reads(gw.port, reads, within=2.0)
            assert answer.startswith(b"HTTP/1.1 400 "), answer
            assert took < 1.0
            assert up.seen == []
    finally:
        await up.close()


async def test_an_http09_request_after_a_kept_alive_one_is_refused_at_once() -> None:
    """On a kept-alive connection llhttp still reports the previous request's version
    while it waits after a version-less line: that must not hide it."""
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/x", up.port))) as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            try:
                writer.write(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
                head = await _read_response(reader)
                assert head.startswith(b"HTTP/1.1 200 "), head
                writer.write(b"GET /x\r\n")
                answer = await asyncio.wait_for(reader.read(), 2.0)
            finally:
                writer.close()
            assert answer.startswith(b"HTTP/1.1 400 "), answer
            assert [s.path_qs for s in up.seen] == ["/x"]
    finally:
        await up.close()


async def test_a_head_sent_line_by_line_is_still_served() -> None:
    """The 0.9 check looks at reads that end a line inside a head: a client writing its
    request line by line (first on the connection, then kept alive) is not mistaken for
    one, even with the shortest target."""
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/{any}", up.port))) as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            try:
                for target in (b"/", b"/a", b"/"):
                    for line in (b"GET " + target + b" HTTP/1.1\r\n", b"Host: t\r\n", b"\r\n"):
                        writer.write(line)
                        await writer.drain()
                        await asyncio.sleep(0.05)
                    head = await _read_response(reader)
                    assert head.startswith(b"HTTP/1.1 200 "), head
            finally:
                writer.close()
            assert [s.path_qs for s in up.seen] == ["/", "/a", "/"]
    finally:
        await up.close()
