"""An upstream that records the exact bytes it receives and parses them with strict framing.

It stands in for a real service (uvicorn, gunicorn, Node) when a test must prove what the
gateway framed: every connection's byte stream is parsed with llhttp honouring
Content-Length and chunked framing, exactly as a service would, and each parsed request is
answered. Like many frameworks it may answer a request as soon as its head arrived, before
reading the body (``answer_early``), which is what makes a mis-framed body dangerous: the
connection is then reused while the service still expects body bytes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httptools


@dataclass
class Received:
    """One request as the upstream parsed it from its byte stream."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class _ConnectionState:
    index: int
    raw: bytearray = field(default_factory=bytearray)
    in_message: bool = False
    broken: str | None = None


class _Parser:
    def __init__(self, upstream: FramingUpstream, state: _ConnectionState, writer: object) -> None:
        self.upstream = upstream
        self.state = state
        self.writer = writer
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.answered = False

    def on_message_begin(self) -> None:
        self.state.in_message = True
        self.url = b""
        self.headers = []
        self.body = bytearray()
        self.answered = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self.upstream.answer_early:
            self._answer()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.state.in_message = False
        self.upstream.received.append(
            Received(
                self.parser.get_method().decode("latin-1"),
                self.url.decode("latin-1"),
                self.headers,
                bytes(self.body),
                self.state.index,
            )
        )
        if not self.answered:
            self._answer()

    def _answer(self) -> None:
        self.answered = True
        body = b'{"n": %d}' % (len(self.upstream.received) + 1)
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        # A response to HEAD has no body (RFC 9110 s.9.3.2), whatever its length says.
        self.writer.write(head if self.parser.get_method() == b"HEAD" else head + body)  # type: ignore[attr-defined]


class FramingUpstream:
    """A raw TCP server that parses and answers every request it receives, keeping the
    connections alive, and records both the parsed requests and the raw bytes."""

    def __init__(self, *, answer_early: bool = False) -> None:
        self.answer_early = answer_early
        self.received: list[Received] = []
        self.connections: list[_ConnectionState] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> FramingUpstream:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = _ConnectionState(len(self.connections))
        self.connections.append(state)
        parser = _Parser(self, state, writer)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                state.raw += data
                try:
                    parser.parser.feed_data(data)
                except httptools.HttpParserError as exc:
                    state.broken = f"{type(exc).__name__}: {exc}"
                    break
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    @property
    def leftover(self) -> list[str]:
        """Connections whose byte stream stopped inside a message, or did not parse."""
        out = []
        for state in self.connections:
            if state.broken is not None:
                out.append(f"connection {state.index}: {state.broken}")
            elif state.in_message:
                out.append(f"connection {state.index}: stopped inside a message")
        return out

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@dataclass
class ClientView:
    """What a client read back: statuses in order, and whether the gateway closed."""

    statuses: list[int]
    closed: bool
    leftover: bytes


def _parse_responses(data: bytes, methods: list[str]) -> tuple[list[int], bytes]:
    """Responses in ``data``, framed as a client that sent ``methods`` in order would."""
    statuses: list[int] = []
    pos = 0
    while len(statuses) < len(methods):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        head = data[pos:end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body_at = end + 4
        if status == 100:
            pos = body_at
            continue
        if methods[len(statuses)] == "HEAD" or status in (204, 304):
            pos = body_at
        elif "content-length" in headers:
            pos = body_at + int(headers["content-length"])
            if pos > len(data):
                break
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            cursor = body_at
            while True:
                line_end = data.find(b"\r\n", cursor)
                if line_end < 0:
                    return statuses, data[pos:]
                size = int(data[cursor:line_end].split(b";")[0], 16)
                cursor = line_end + 2 + size + 2
                if size == 0:
                    break
            if cursor > len(data):
                break
            pos = cursor
        else:
            pos = len(data)  # close-delimited
        statuses.append(status)
    return statuses, data[pos:]


async def converse(port: int, data: bytes, methods: list[str], timeout: float) -> ClientView:
    """Send ``data`` (requests with ``methods``) on one connection; read every answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = bytearray()
    closed = False
    try:
        writer.write(data)
        await writer.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            statuses, _rest = _parse_responses(bytes(raw), methods)
            if len(statuses) == len(methods):
                break
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
        if not closed:
            try:
                extra = await asyncio.wait_for(reader.read(65536), 0.05)
                closed = extra == b""
                raw += extra
            except (TimeoutError, ConnectionError):
                pass
    except ConnectionError:
        closed = True
    finally:
        writer.close()
    statuses, rest = _parse_responses(bytes(raw), methods)
    return ClientView(statuses, closed, rest)
