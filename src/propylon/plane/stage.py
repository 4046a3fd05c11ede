"""The stage interface: what a per-route feature is, and the one per-request object, ``Flow``.

A route's chain (``plane/chain.py``) is a tuple of request stages built once from the config.
For each request the chain calls ``on_request(flow)`` on each stage in order; a stage answers
with one of three outcomes:

- ``CONTINUE``: go on to the next stage (and, after the last one, to the terminal);
- ``RESPOND``: the stage answered the request itself (``flow.refuse`` for a JSON error
  envelope, ``flow.answer`` for anything else, e.g. a CORS preflight); nothing goes upstream;
- ``PENDING``: the stage started asynchronous work that ends by calling
  ``flow.resume(outcome)``: either a coroutine (``flow.spawn``: a JWKS refresh, a plugin's
  coroutine), or, callback style, work that something else already runs and that reports to
  ``flow.deliver`` (``flow.wait_for``: a Redis decision sent in a batch with others, without
  a task of its own). Meanwhile the request body waits under the connection's flow control.

Response stages (``ResponseStage``) see the upstream's response head before the client
does (they may drop or change header fields, and add lines) and the end of every exchange
of the route, proxied or answered by the gateway (status, duration: what access logs,
circuit breakers and caches need).

A route that configures no feature has no stages: its requests run no stage call at all.

Stages add what they learnt to the flow: ``principal`` (authentication), lines for the
upstream request head (``add_upstream_line``: identity, claim headers, plugin headers) and
lines for the client's response head (``add_response_line``: rate-limit and CORS headers),
which go on whichever response the client gets, proxied or made by the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, Protocol

from mypy_extensions import mypyc_attr

from propylon import errors
from propylon.tracing.context import Trace, traceparent_of

if TYPE_CHECKING:
    from propylon.auth import Principal
    from propylon.http.request import Request

log = logging.getLogger("propylon.plane")

CONTINUE: Final = 0
RESPOND: Final = 1
PENDING: Final = 2

NO_HEADERS: tuple[tuple[str, str], ...] = ()


class Client(Protocol):
    """What stages may know of the client connection a request came on (the engine's
    connection has these; the plane never imports the engine). A typing Protocol, not a
    mypyc trait: only stages that need the client read it, and interpreted classes (test
    doubles, plugins' own tests) cannot implement a compiled trait."""

    peer: str
    """The TCP peer's address (a trusted proxy's, when one sits in front)."""
    local_port: int
    scheme: bytes
    """``http`` or ``https``: how the client reached this listener."""

    def gone(self) -> bool:
        """The connection closed: a resumed flow has nobody left to answer."""
        raise NotImplementedError


class Resumer(Protocol):
    """Where a flow goes once a stage's asynchronous work ended: the chain runner."""

    def resume(self, flow: Flow, outcome: int) -> None:
        raise NotImplementedError


class ClientAddressing(Protocol):
    """How the client's address is found: the peer, or ``X-Forwarded-For`` read through the
    configured trusted proxies only (``policies.forwarding.TrustedProxies``)."""

    def client_address(self, peer: str, forwarded_for: list[bytes]) -> str:
        raise NotImplementedError


class Reply:
    """A stage's own answer: a JSON error envelope (``kind``) or a response it composed."""

    __slots__ = ("body", "headers", "kind", "lines", "status")

    def __init__(
        self,
        status: int,
        kind: errors.ErrorKind | None,
        headers: tuple[tuple[str, str], ...],
        lines: list[bytes],
        body: bytes,
    ) -> None:
        self.status: Final = status
        self.kind: Final = kind
        """The error, for an envelope answer; None for a composed answer."""
        self.headers: Final = headers
        """Extra header fields of an error answer (``WWW-Authenticate``, ``Retry-After``)."""
        self.lines: Final = lines
        """``Name: value`` header lines of a composed answer."""
        self.body: Final = body


class Flow:
    """One request on its way through a route's chain."""

    __slots__ = (
        "_address",
        "_decide",
        "addressing",
        "client",
        "position",
        "principal",
        "reply",
        "request",
        "response_lines",
        "resumer",
        "route_index",
        "spawner",
        "started",
        "target",
        "trace",
        "trace_lines",
        "upstream_lines",
    )

    def __init__(
        self,
        client: Client,
        request: Request,
        target: bytes,
        route_index: int,
        addressing: ClientAddressing,
        resumer: Resumer,
        spawner: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.client: Final = client
        self.request: Final = request
        self.target = target
        """The downstream request target (path and query) the terminal will send."""
        self.route_index: Final = route_index
        self.addressing: Final = addressing
        self.resumer: Final = resumer
        self.spawner: Final = spawner
        self.principal: Principal | None = None
        """The verified caller, once an authentication stage ran (None: anonymous)."""
        self.upstream_lines: list[bytes] = []
        """Header lines stages add to the upstream request head, in stage order."""
        self.response_lines: list[bytes] | None = None
        """Header lines stages add to the client's response (None: none, the usual case)."""
        self.reply: Reply | None = None
        self.position = 0
        """Index of the stage running now (the chain's; stages leave it alone)."""
        self.started = 0.0
        """The loop's clock when the route took the request; set only on routes with
        response stages (the only readers)."""
        self.trace: Trace | None = None
        """The request's trace, on a gateway that exports spans (None: propagation only)."""
        self.trace_lines = b""
        """The ``traceparent`` (and ``tracestate``) lines sent upstream; b"" until then."""
        self._address: str | None = None
        self._decide: Callable[[Flow, Any], int] | None = None

    # -- reading the request ------------------------------------------------------------------
    def header(self, lower_name: bytes) -> bytes | None:
        """The first value of a request header that may go upstream (``lower_name`` in lower
        case), or None. Headers the gateway strips or acts on (identity, claim headers,
        hop-by-hop, ``Host``, framing, ``X-Forwarded-*``) are not found here."""
        size = len(lower_name)
        for line in self.request.kept:
            if len(line) > size and line[size] == 58 and line[:size].lower() == lower_name:
                return line[size + 1 :].strip()
        return None

    def traceparent(self) -> bytes:
        """The ``traceparent`` value the upstream received (b"": nothing was forwarded)."""
        return traceparent_of(self.trace_lines)

    def client_address(self) -> str:
        """The client's address: the peer's, or from ``X-Forwarded-For`` through trusted
        proxies only. Computed once per request."""
        address = self._address
        if address is None:
            forwarded_for = self.request.forwarded_for
            # Without X-Forwarded-For the peer is the client whoever it is: no call through
            # the protocol (a Python-level call, some 450 instructions) for the common case.
            if forwarded_for:
                address = self.addressing.client_address(self.client.peer, forwarded_for)
            else:
                address = self.client.peer
            self._address = address
        return address

    # -- adding to the exchange ---------------------------------------------------------------
    def add_upstream_line(self, line: bytes) -> None:
        """Add a ``Name: value`` line to the upstream request head."""
        self.upstream_lines.append(line)

    def add_response_line(self, line: bytes) -> None:
        """Add a ``Name: value`` line to whatever response the client gets."""
        lines = self.response_lines
        if lines is None:
            self.response_lines = [line]
        else:
            lines.append(line)

    # -- answering ------------------------------------------------------------------------------
    def refuse(
        self, kind: errors.ErrorKind, headers: tuple[tuple[str, str], ...] = NO_HEADERS
    ) -> int:
        """Answer with ``kind``'s JSON envelope; returns ``RESPOND`` for the stage to return."""
        self.reply = Reply(kind.status, kind, headers, [], b"")
        return RESPOND

    def answer(self, status: int, lines: list[bytes], body: bytes = b"") -> int:
        """Answer with a response the stage composed (``lines``: ``Name: value``, without
        framing, which the gateway adds); returns ``RESPOND``."""
        self.reply = Reply(status, None, NO_HEADERS, lines, body)
        return RESPOND

    # -- waiting --------------------------------------------------------------------------------
    def spawn(self, work: Coroutine[Any, Any, int]) -> int:
        """Run ``work`` (a coroutine returning CONTINUE or RESPOND) and resume the chain with
        its outcome; returns ``PENDING`` for the stage to return. Should ``work`` raise, the
        request is answered 500 and the error logged, and the worker carries on."""
        self.spawner(self._settle(work))
        return PENDING

    async def _settle(self, work: Coroutine[Any, Any, int]) -> None:
        try:
            outcome = await work
        except Exception:
            log.exception("a stage failed while the request waited for it")
            outcome = self.refuse(errors.INTERNAL)
        self.resume(outcome)

    def wait_for(self, decide: Callable[[Flow, Any], int]) -> int:
        """Wait, callback style: the stage has arranged (or arranges right after this) for
        ``deliver(value)`` to be called once, later, from the event loop; the chain then
        resumes with ``decide(flow, value)`` (CONTINUE or RESPOND). Returns ``PENDING`` for
        the stage to return. Cheaper than ``spawn`` when the work already runs elsewhere (a
        batch of Redis decisions): no task and no coroutine per request. Should ``decide``
        raise, the request is answered 500 and the error logged, as with ``spawn``."""
        self._decide = decide
        return PENDING

    def deliver(self, value: object) -> None:
        """The awaited value (see ``wait_for``): decide with it and resume the chain."""
        decide = self._decide
        if decide is None:
            # Delivered twice, or without wait_for: a bug in the stage; say so, do not resume
            # a flow that has moved on.
            log.error("a value was delivered to a request that was not waiting for one")
            return
        self._decide = None
        try:
            outcome = decide(self, value)
        except Exception:
            log.exception("a stage failed while the request waited for it")
            outcome = self.refuse(errors.INTERNAL)
        self.resume(outcome)

    def resume(self, outcome: int) -> None:
        """Continue after ``PENDING`` (a no-op once the client is gone)."""
        if self.client.gone():
            return
        self.resumer.resume(self, outcome)


@mypyc_attr(allow_interpreted_subclasses=True)
class RequestStage:
    """One feature of a route, run for each of its requests before anything goes upstream.

    Built once per route at start-up, and shared by all of that route's requests: a stage
    keeps per-request state on the flow, never on itself.
    """

    name = "stage"
    """Shown in logs, ``explain`` and the cost benchmark."""

    def on_request(self, flow: Flow) -> int:
        raise NotImplementedError

    async def start(self) -> None:
        """Called once when the worker starts serving (open clients, load files)."""

    async def close(self) -> None:
        """Called once when the worker stops."""


@mypyc_attr(allow_interpreted_subclasses=True)
class ResponseStage:
    """One feature of a route that looks at its responses. Built once per route, shared by
    its requests: per-request state lives on the flow."""

    name = "response stage"

    def on_response(self, flow: Flow, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """The upstream's final response head (``headers`` as received, name and value),
        before any of it goes to the client. Edit ``headers`` in place to drop or change a
        field; add lines with ``flow.add_response_line``. Framing and hop-by-hop fields are
        the gateway's own and are rewritten after this whatever a stage does."""

    def on_end(self, flow: Flow, status: int, seconds: float) -> None:
        """The exchange ended: ``status`` as the client got it (499 when it left first),
        ``seconds`` since the route took the request (``flow.started``). Called for
        gateway-made answers too."""
