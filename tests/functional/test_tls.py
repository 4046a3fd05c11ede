"""TLS termination on real sockets, with a certificate authority made for each test."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from propylon.config.model import TlsSpec
from propylon.engine.gateway import Gateway
from tests.support.certificates import TestCA
from tests.support.gateway import config, route
from tests.support.upstreams import RecordingUpstream


@asynccontextmanager
async def tls_gateway(
    ca: TestCA,
    upstream_port: int,
    *,
    only: bool = False,
    trusted_proxies: tuple[str, ...] = (),
) -> AsyncIterator[Gateway]:
    cert, key = ca.issue("server")
    cfg = config(
        route("/x", upstream_port),
        trusted_proxies=trusted_proxies,
        tls=TlsSpec(cert_file=str(cert), key_file=str(key), port=0, only=only),
    )
    gateway = Gateway(cfg)
    await gateway.start("127.0.0.1", 0)
    try:
        yield gateway
    finally:
        await gateway.stop(drain_timeout=1.0)


async def _tls_get(
    port: int, context: ssl.SSLContext, path: str = "/x", *, host: str = "localhost"
) -> tuple[bytes, ssl.SSLObject]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=host
    )
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(), 5)
        tls = writer.get_extra_info("ssl_object")
        return answer, tls
    finally:
        writer.close()


def _replace(path: str, content: bytes) -> None:
    Path(path).write_bytes(content)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA.create(tmp_path / "ca")


async def test_https_and_http_listeners_side_by_side_state_their_scheme(ca: TestCA) -> None:
    up = await RecordingUpstream().start()
    try:
        async with tls_gateway(ca, up.port) as gw:
            assert gw.tls is not None
            connector = aiohttp.TCPConnector(ssl=ca.client_context())
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.get(f"https://localhost:{gw.tls.port}/x") as r,
            ):
                assert r.status == 200
                assert (await r.json())["path"] == "/x"
            assert up.last.header("X-Forwarded-Proto") == "https"
            assert up.last.header("X-Forwarded-Port") == str(gw.tls.port)
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{gw.port}/x") as r,
            ):
                assert r.status == 200
            assert up.last.header("X-Forwarded-Proto") == "http"
            assert up.last.headers_named("X-Forwarded-Proto") == ["http"]
    finally:
        await up.close()


async def test_a_trusted_proxys_stated_proto_still_wins_on_tls(ca: TestCA) -> None:
    up = await RecordingUpstream().start()
    stated = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "http"}
    try:
        async with tls_gateway(ca, up.port) as gw:
            assert gw.tls is not None
            connector = aiohttp.TCPConnector(ssl=ca.client_context())
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.get(f"https://localhost:{gw.tls.port}/x", headers=stated),
            ):
                pass
            # 127.0.0.1 is no trusted proxy here: what it states is replaced.
            assert up.last.headers_named("X-Forwarded-Proto") == ["https"]
        async with tls_gateway(ca, up.port, trusted_proxies=("127.0.0.0/8",)) as gw:
            assert gw.tls is not None
            connector = aiohttp.TCPConnector(ssl=ca.client_context())
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get(f"https://localhost:{gw.tls.port}/x", headers=stated):
                    pass
                assert up.last.headers_named("X-Forwarded-Proto") == ["http"]
                assert up.last.header("X-Real-IP") == "10.1.2.3"
                headers = {"X-Forwarded-For": "10.1.2.3"}
                async with session.get(f"https://localhost:{gw.tls.port}/x", headers=headers):
                    pass
                assert up.last.headers_named("X-Forwarded-Proto") == ["https"]
    finally:
        await up.close()


async def test_alpn_negotiates_http11_only_and_tls12_is_the_floor(ca: TestCA) -> None:
    up = await RecordingUpstream().start()
    try:
        async with tls_gateway(ca, up.port) as gw:
            assert gw.tls is not None
            context = ca.client_context()
            context.set_alpn_protocols(["h2", "http/1.1"])
            answer, tls = await _tls_get(gw.tls.port, context)
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert tls.selected_alpn_protocol() == "http/1.1"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.compression() is None

            twelve = ca.client_context()
            twelve.maximum_version = ssl.TLSVersion.TLSv1_2
            answer, tls = await _tls_get(gw.tls.port, twelve)
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert tls.version() == "TLSv1.2"
            cipher = tls.cipher()
            assert cipher is not None
            assert cipher[0].startswith("ECDHE-") and ("GCM" in cipher[0] or "CHACHA" in cipher[0])

            # A CBC suite is not offered: a client that only knows it is refused.
            cbc = ca.client_context()
            cbc.maximum_version = ssl.TLSVersion.TLSv1_2
            cbc.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await _tls_get(gw.tls.port, cbc)
            await asyncio.sleep(0.05)
            assert gw.tls.failures["no_shared_cipher"] == 1
    finally:
        await up.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls11_is_refused_by_the_server(ca: TestCA) -> None:
    up = await RecordingUpstream().start()
    try:
        async with tls_gateway(ca, up.port) as gw:
            assert gw.tls is not None
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.load_verify_locations(str(ca.cert_file))
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            old.minimum_version = ssl.TLSVersion.TLSv1_1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await _tls_get(gw.tls.port, old)
            await asyncio.sleep(0.05)
            # The server saw the ClientHello and refused its version (not the client
            # refusing to try).
            assert gw.tls.failures["unsupported_protocol"] == 1
            assert gw.tls.handshakes == 0
    finally:
        await up.close()


async def test_untrusted_and_wrong_host_clients_fail_verification(
    ca: TestCA, tmp_path: Path
) -> None:
    up = await RecordingUpstream().start()
    try:
        async with tls_gateway(ca, up.port) as gw:
            assert gw.tls is not None
            other = TestCA.create(tmp_path / "other", "another CA")
            with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
                await _tls_get(gw.tls.port, other.client_context())
            with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
                await _tls_get(gw.tls.port, ca.client_context(), host="api.example.com")
            answer, _tls = await _tls_get(gw.tls.port, ca.client_context())
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert len(up.seen) == 1
    finally:
        await up.close()


async def test_plain_http_on_the_tls_port_is_closed_unanswered_and_logged_at_debug(
    ca: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    up = await RecordingUpstream().start()
    try:
        async with tls_gateway(ca, up.port) as gw:
            assert gw.tls is not None
            with caplog.at_level(logging.DEBUG, logger="propylon"):
                reader, writer = await asyncio.open_connection("127.0.0.1", gw.tls.port)
                writer.write(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert await asyncio.wait_for(reader.read(), 5) == b""
                writer.close()
                # A client that connects and says nothing is cut at the head deadline too.
                await asyncio.sleep(0.05)
            assert gw.tls.failures["http_request"] == 1
            assert up.seen == []
            failures = [r for r in caplog.records if "handshake failed" in r.getMessage()]
            assert failures and all(r.levelno == logging.DEBUG for r in failures)
            assert all(r.exc_info is None for r in caplog.records)
            # The listener still serves.
            answer, _tls = await _tls_get(gw.tls.port, ca.client_context())
            assert answer.startswith(b"HTTP/1.1 200 ")
    finally:
        await up.close()


async def test_tls_only_opens_no_plain_listener(ca: TestCA) -> None:
    up = await RecordingUpstream().start()
    try:
        async with tls_gateway(ca, up.port, only=True) as gw:
            assert gw.tls is not None
            assert gw.port == gw.tls.port
            assert [s.getsockname()[1] for s in gw.sockets] == []
            answer, _tls = await _tls_get(gw.port, ca.client_context())
            assert answer.startswith(b"HTTP/1.1 200 ")
    finally:
        await up.close()


async def test_reload_keeps_open_connections_and_refuses_bad_files(
    ca: TestCA, caplog: pytest.LogCaptureFixture
) -> None:
    up = await RecordingUpstream().start()
    try:
        async with tls_gateway(ca, up.port) as gw:
            assert gw.tls is not None
            context = ca.client_context()
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", gw.tls.port, ssl=context, server_hostname="localhost"
            )
            first = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            new_cert, new_key = ca.issue("renewed")
            _replace(gw.tls.spec.cert_file, new_cert.read_bytes())
            _replace(gw.tls.spec.key_file, new_key.read_bytes())
            assert gw.tls.reload()
            _answer, tls = await _tls_get(gw.tls.port, context)
            renewed = tls.getpeercert(binary_form=True)
            assert renewed != first
            # The connection made before the reload still works.
            writer.write(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            line = await asyncio.wait_for(reader.readline(), 5)
            assert line.startswith(b"HTTP/1.1 200 ")
            writer.close()

            _replace(gw.tls.spec.key_file, b"not a key\n")
            with caplog.at_level(logging.ERROR, logger="propylon"):
                assert not gw.tls.reload()
            assert gw.tls.spec.key_file in caplog.text
            assert "still serving the previous certificate" in caplog.text
            _answer, tls = await _tls_get(gw.tls.port, context)
            assert tls.getpeercert(binary_form=True) == renewed
    finally:
        await up.close()
