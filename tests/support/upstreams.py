"""Real HTTP servers on loopback that stand in for the services behind the gateway."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Seen:
    """What one upstream request looked like when it arrived."""

    method: str
    path_qs: str
    raw_path: str
    headers: list[tuple[str, str]]
    body_len: int
    body_sha256: str
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class RecordingUpstream:
    """An aiohttp server that records every request and answers JSON (or as told)."""

    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    runner: web.AppRunner | None = None
    handler: Callable[[web.Request, Seen], Awaitable[web.StreamResponse]] | None = None

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> RecordingUpstream:
        """Listen on ``port`` (0: any free one; a former one to restart a killed upstream),
        on ``host`` (127.0.0.2, .3...: loopback too on Linux, for several addresses of one
        name on one port)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        digest = hashlib.sha256()
        size = 0
        keep = bytearray()
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
            if len(keep) < 65536:
                keep += chunk[: 65536 - len(keep)]
        seen = Seen(
            request.method,
            request.path_qs,
            request.raw_path,
            [(k.decode(), v.decode()) for k, v in request.raw_headers],
            size,
            digest.hexdigest(),
            bytes(keep),
        )
        self.seen.append(seen)
        if self.handler is not None:
            return await self.handler(request, seen)
        return web.json_response(
            {"path": request.path_qs, "method": request.method, "user": request.headers.get("User")}
        )

    @property
    def last(self) -> Seen:
        assert self.seen, "the upstream received no request"
        return self.seen[-1]

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class RawUpstream:
    """A TCP server whose every connection is handled by ``behaviour`` (for broken peers)."""

    def __init__(
        self, behaviour: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ) -> None:
        self.behaviour = behaviour
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.requests = 0

    async def start(self) -> RawUpstream:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.requests += 1
            try:
                await self.behaviour(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
