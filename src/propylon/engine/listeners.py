"""The TLS listener: accepts connections, runs each handshake, hands the connection to an
ordinary ``ClientConnection`` with ``scheme = https``.

It accepts by itself and calls ``loop.connect_accepted_socket(..., ssl=context)`` per
connection, rather than giving the context to ``create_server``, for two reasons:

- each connection takes the context current at its accept, so a certificate reload is one
  assignment: new handshakes get the new certificate, connections already up keep theirs;
- the handshake's outcome comes back to us, so a failed handshake (an untrusted or confused
  client, plain HTTP on this port, a timeout) is counted and logged at debug. With
  ``create_server(ssl=...)`` it never reaches any protocol we own.

The cost is a coroutine per connection (not per request), small next to the handshake's
public-key operations. Plain listeners do not go through here at all. After the handshake
the connection is uvloop's own TLS transport under the same ``ClientConnection`` code.

Plain HTTP sent to this port fails the handshake (OpenSSL reports ``HTTP_REQUEST``) and the
connection is closed without an answer: a 400 would be cleartext on a port whose clients
expect that nothing here is ever sent unencrypted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections import Counter
from typing import TYPE_CHECKING, Any

from propylon.engine.server import ClientConnection, Handler
from propylon.http.tls import TlsFilesError, server_context

if TYPE_CHECKING:
    from propylon.config.model import TlsSpec

log = logging.getLogger("propylon.tls")

BACKLOG = 4096
# accept() failing for lack of descriptors or memory: wait this long before trying again,
# rather than spinning on a listening socket that stays readable.
RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
RESOURCE_PAUSE = 0.5


class TlsListener:
    def __init__(self, gateway: Handler, spec: TlsSpec, context: ssl.SSLContext) -> None:
        self.gateway = gateway
        self.spec = spec
        self.context = context
        """The context every new handshake uses; replaced whole by ``reload``."""
        self.handshakes = 0
        self.failures: Counter[str] = Counter()
        """Failed handshakes by reason (OpenSSL's reason code, ``timeout``, ``reset``)."""
        self.socket: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    def build(cls, gateway: Handler, spec: TlsSpec) -> TlsListener:
        """Raises TlsFilesError (the loader checked the files, but they may have changed)."""
        return cls(gateway, spec, server_context(spec.cert_file, spec.key_file))

    async def start(self, host: str, *, reuse_port: bool) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, self.spec.port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.socket = sock
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop(sock))

    @property
    def port(self) -> int:
        assert self.socket is not None
        return int(self.socket.getsockname()[1])

    def close(self) -> None:
        """Stop accepting and abandon handshakes in progress (connections already made are
        the gateway's, and drain with the others)."""
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        for task in list(self._pending):
            task.cancel()
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def reload(self) -> bool:
        """Read the certificate and key again; new handshakes use them. When the files are
        unusable, keep serving the previous ones and say why."""
        try:
            context = server_context(self.spec.cert_file, self.spec.key_file)
        except TlsFilesError as exc:
            for problem in exc.problems:
                log.error(
                    "TLS certificate reload failed, still serving the previous certificate: %s: %s",
                    problem.file,
                    problem.message,
                )
            return False
        self.context = context
        log.info("TLS certificate reloaded from %s", self.spec.cert_file)
        return True

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _address = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in RESOURCE_ERRORS:
                    log.error("TLS listener cannot accept: %s; pausing", exc.strerror)
                    await asyncio.sleep(RESOURCE_PAUSE)
                continue  # the client gave up before we accepted it (ECONNABORTED, ...)
            task = loop.create_task(self._handshake(client))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _handshake(self, client: socket.socket) -> None:
        gateway = self.gateway
        loop = asyncio.get_running_loop()
        # A protocol by its methods (engine/gateway.py says why): typeshed wants a BaseProtocol.
        factory: Any = self._connection
        try:
            await loop.connect_accepted_socket(
                factory,
                client,
                ssl=self.context,
                # The handshake is part of sending a request head: the same deadline.
                ssl_handshake_timeout=gateway.client_limits.header_timeout,
            )
        except (TimeoutError, OSError) as exc:
            # ssl.SSLError is an OSError. Closing is all a failed handshake gets: the
            # client is told nothing beyond TLS's own alert.
            reason = _reason(exc)
            self.failures[reason] += 1
            log.debug("TLS handshake failed (%s): %s", reason, exc)
            if client.fileno() != -1:  # uvloop did not take it over (it closes what it took)
                with contextlib.suppress(OSError):
                    client.close()
            return
        self.handshakes += 1

    def _connection(self) -> ClientConnection:
        return ClientConnection(self.gateway, b"https")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or "ssl").lower()
    if isinstance(exc, ConnectionAbortedError | TimeoutError):
        return "timeout"
    return "reset"
