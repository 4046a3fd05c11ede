"""A raw HTTP/1.1 client for tests that must control every byte on the wire."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httptools
import orjson


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> object:
        return orjson.loads(self.body)


class _Collector:
    def __init__(self, head_only: bool) -> None:
        self.responses: list[Response] = []
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only
        self.status = 0

    def on_message_begin(self) -> None:
        self.headers = []
        self.body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.head_only:
            self.responses.append(Response(self.status, self.headers, b"", True))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if not self.head_only and self.status >= 200:
            self.responses.append(Response(self.status, self.headers, bytes(self.body), True))


async def exchange_raw(
    port: int,
    data: bytes,
    *,
    expect: int = 1,
    timeout: float = 5.0,
    head_only: bool = False,
    address: str = "127.0.0.1",
    source: str | None = None,
) -> tuple[list[Response], bytes, bool]:
    """Send ``data``; collect up to ``expect`` responses. Returns (responses, raw, closed).
    ``address``: where the gateway listens; ``source``: the client's own address (any of
    127.0.0.0/8 works on Linux), for tests that judge clients by address."""
    local = (source, 0) if source is not None else None
    reader, writer = await asyncio.open_connection(address, port, local_addr=local)
    collector = _Collector(head_only)
    raw = bytearray()
    closed = False
    try:
        writer.write(data)
        await writer.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(collector.responses) < expect:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), remaining)
            except TimeoutError:
                break
            if not chunk:
                closed = True
                break
            raw += chunk
            try:
                collector.parser.feed_data(chunk)
            except httptools.HttpParserError:
                break
        if not closed and len(collector.responses) >= expect:
            # Peek whether the server closed right after the last response.
            try:
                extra = await asyncio.wait_for(reader.read(65536), 0.05)
                closed = extra == b""
                raw += extra
            except TimeoutError:
                pass
    finally:
        writer.close()
    # A response that ended by the connection closing (no framing) is complete only if the
    # parser saw its end; anything else is reported as incomplete.
    if collector.status and len(collector.responses) < expect and collector.body:
        collector.responses.append(
            Response(collector.status, collector.headers, bytes(collector.body), False)
        )
    return collector.responses, bytes(raw), closed


async def request(
    port: int,
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    host: str = "gateway.test",
    timeout: float = 5.0,
    address: str = "127.0.0.1",
    source: str | None = None,
) -> Response:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for k, v in headers or []:
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    responses, _raw, _closed = await exchange_raw(
        port,
        data,
        timeout=timeout,
        head_only=method == "HEAD",
        address=address,
        source=source,
    )
    assert responses, f"no response to {method} {target}"
    return responses[0]
