"""W3C Trace Context (``traceparent``/``tracestate``): kept, created and sent on every request.

Every proxied request carries a ``traceparent`` upstream. A client's is kept when it is valid
(W3C Trace Context s.3.2 and, for versions after ``00``, s.4.3): its trace id and sampled flag
go on, its ``tracestate`` with them; the parent id becomes the gateway's own span id, because
the gateway is a hop. An invalid one is dropped with its ``tracestate`` and a new trace starts,
as when none was sent. The sampled flag of a new trace is the gateway's decision (trace ids
below ``sample_ratio`` of the 64-bit range, OpenTelemetry's ``TraceIdRatioBased``); a
client's decision is respected (parent-based).

Without an OTLP endpoint this is all that happens: a few hundred nanoseconds per request, one
random draw and one formatted line. With one, ``Tracing.begin`` keeps a ``Trace`` on each
request (ids, a few request facts and wall-clock timestamps) and, for sampled requests, hands
it to the span sink at the end; building and exporting spans happens off the event loop
(``tracing/export.py``, loaded only then).

Ids come from ``random.getrandbits`` (the module's generator, reseeded in every forked
worker): trace ids need to be unique and unpredictable enough to spread across samplers, not
secret, and a ``getrandom()`` syscall per request would cost more than the rest of this.
"""

from __future__ import annotations

import random
import time
from typing import Final, Protocol

from propylon.http.request import Request

_HEX_AND_DASH: Final = b"0123456789abcdef-"
_ZERO_TRACE: Final = b"0" * 32
_ZERO_SPAN: Final = b"0" * 16
_MASK64: Final = (1 << 64) - 1
TRACEPARENT_LINE: Final = b"traceparent: "
"""How the first line of ``Tracing.upstream_lines`` starts; the value follows (55 bytes)."""
TRACESTATE_LINE: Final = b"\r\ntracestate: "
TRACE_HEADERS: Final = frozenset({b"traceparent", b"tracestate"})
"""Request headers only the gateway writes upstream (client copies are read, then dropped)."""


def valid_traceparent(value: bytes) -> bool:
    """Whether ``value`` is a ``traceparent`` this gateway may continue.

    Version ``00`` is exactly 55 characters of lower-case hex in four dash-separated fields;
    ``ff`` is invalid; an all-zero trace or parent id is invalid. A later version is parsed
    as ``00`` is, and may carry more fields after a dash at position 55 (s.4.3).
    """
    size = len(value)
    if size < 55:
        return False
    if size > 55 and (value[55] != 45 or value[:2] == b"00"):
        return False
    if value[2] != 45 or value[35] != 45 or value[52] != 45:
        return False
    head = value[:55]
    # Only hex digits and dashes, and only three dashes (at the places checked above).
    if head.count(b"-") != 3 or head.translate(None, _HEX_AND_DASH):
        return False
    if value[:2] == b"ff":
        return False
    return value[3:35] != _ZERO_TRACE and value[36:52] != _ZERO_SPAN


def sent_flags(flags: bytes) -> bytes:
    """The trace-flags to send on for a client's ``flags``: sampled (and level 2's random
    bit) kept, the bits no version defines cleared, as s.3.2.2.5 asks."""
    if flags == b"01" or flags == b"00":
        return flags
    return b"%02x" % (int(flags, 16) & 0x03)


def _ids() -> tuple[int, int]:
    """A new trace id (128 bits) and span id (64 bits), neither zero; one draw."""
    while True:
        bits = random.getrandbits(192)
        trace = bits >> 64
        span = bits & _MASK64
        if trace != 0 and span != 0:
            return trace, span


def span_id() -> int:
    while True:
        span = random.getrandbits(64)
        if span != 0:
            return span


class SpanSink(Protocol):
    """Where sampled requests' traces go when they end (``tracing/export.py``'s OTLP sink):
    called on the event loop, so it must only queue."""

    def submit(self, trace: Trace) -> None:
        raise NotImplementedError


class Trace:
    """One request's trace on a gateway that exports spans: its ids, and what the SERVER
    span and the upstream call's CLIENT span will say. Filled on the event loop; read by
    the exporter thread only after ``submit``, when nothing writes it any more."""

    __slots__ = (
        "client_address",
        "ended",
        "error",
        "flags",
        "host",
        "http11",
        "method",
        "parent_id",
        "route_index",
        "sampled",
        "scheme",
        "server_id",
        "sink",
        "started",
        "state",
        "status",
        "target",
        "trace_id",
        "upstream_ended",
        "upstream_host",
        "upstream_id",
        "upstream_port",
        "upstream_started",
        "upstream_status",
    )

    def __init__(
        self,
        sink: SpanSink,
        trace_id: bytes,
        parent_id: bytes | None,
        flags: bytes,
        state: bytes | None,
        sampled: bool,
    ) -> None:
        self.sink: Final = sink
        self.trace_id: Final = trace_id
        """32 hex digits."""
        self.parent_id: Final = parent_id
        """The client's span id (16 hex digits), or None for a trace the gateway began."""
        self.flags: Final = flags
        self.state: Final = state
        self.sampled: Final = sampled
        self.upstream_id = b"%016x" % span_id()
        """The CLIENT span's id: the parent id the upstream receives."""
        self.server_id = b""
        """The SERVER span's id (sampled traces only)."""
        self.started = 0
        """Unix time in nanoseconds when the route took the request (sampled only)."""
        self.ended = 0
        self.upstream_started = 0
        """When the upstream call began (0: the gateway answered by itself)."""
        self.upstream_ended = 0
        self.status = 0
        """The status the client got (499: it left first)."""
        self.upstream_status = 0
        """The upstream's status (0: it never answered)."""
        self.error = ""
        """Why the request failed, when the gateway says so (an upstream fault such as
        ``timeout``, or a gateway error's codemessage)."""
        self.route_index = 0
        self.method = b""
        self.target = b""
        self.host: bytes | None = None
        self.scheme = b"http"
        self.http11 = True
        self.client_address = ""
        self.upstream_host = ""
        self.upstream_port = 0

    def upstream_lines(self) -> bytes:
        """The ``traceparent`` (and ``tracestate``) lines for the upstream request head."""
        if self.sampled:
            self.upstream_started = time.time_ns()
        line = b"traceparent: 00-%s-%s-%s" % (self.trace_id, self.upstream_id, self.flags)
        state = self.state
        if state is not None:
            return line + TRACESTATE_LINE + state
        return line

    def upstream_failed(self, kind: str) -> None:
        """The upstream call failed (``timeout``, ``refused``, ...)."""
        self.error = kind

    def exchange_ended(
        self, status: int, upstream_status: int, upstream_host: str, upstream_port: int
    ) -> None:
        """The proxied request ended: ``status`` as the client got it, ``upstream_status``
        the upstream's (0 if it never answered)."""
        if not self.sampled:
            return
        now = time.time_ns()
        self.upstream_ended = now
        self.upstream_status = upstream_status
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self._end(status, now)

    def answered(self, status: int, error: str) -> None:
        """The gateway answered by itself (a stage's refusal, no upstream available);
        ``error`` names the answer (its codemessage), an error only for a 5xx."""
        if not self.sampled:
            return
        if error and status >= 500:
            self.error = error
        self._end(status, time.time_ns())

    def _end(self, status: int, now: int) -> None:
        self.status = status
        self.ended = now
        self.sink.submit(self)


class Tracing:
    """One worker's trace propagation (and, with ``sink``, recording); built once."""

    __slots__ = ("bound", "sink")

    def __init__(self, sample_ratio: float, sink: SpanSink | None = None) -> None:
        self.bound = min(int(sample_ratio * (1 << 64)), 1 << 64)
        """New traces whose id's low 64 bits are below this are sampled."""
        self.sink = sink
        """Set when spans are exported (an OTLP endpoint); None: propagation only."""

    def upstream_lines(self, request: Request) -> bytes:
        """Propagation only: the ``traceparent`` (and ``tracestate``) lines to send
        upstream, continuing the client's trace or beginning one."""
        incoming = request.traceparent
        if incoming is not None and valid_traceparent(incoming):
            line = b"traceparent: 00-%s-%016x-%s" % (
                incoming[3:35],
                span_id(),
                sent_flags(incoming[53:55]),
            )
            state = request.tracestate
            if state is not None:
                return line + TRACESTATE_LINE + state
            return line
        trace, span = _ids()
        return b"traceparent: 00-%032x-%016x-%s" % (
            trace,
            span,
            b"01" if (trace & _MASK64) < self.bound else b"00",
        )

    def begin(self, request: Request, sink: SpanSink) -> Trace:
        """A request on a gateway that exports spans: its trace, continued or begun."""
        incoming = request.traceparent
        if incoming is not None and valid_traceparent(incoming):
            flags = sent_flags(incoming[53:55])
            trace = Trace(
                sink,
                incoming[3:35],
                incoming[36:52],
                flags,
                request.tracestate,
                # Parent-based: the client's decision stands.
                (int(flags, 16) & 1) == 1,
            )
        else:
            high, _ = _ids()
            sampled = (high & _MASK64) < self.bound
            trace = Trace(sink, b"%032x" % high, None, b"01" if sampled else b"00", None, sampled)
        if trace.sampled:
            trace.server_id = b"%016x" % span_id()
            trace.started = time.time_ns()
            trace.method = request.method
            trace.target = request.target
            trace.host = request.host
            trace.http11 = request.http11
        return trace


def traceparent_of(lines: bytes) -> bytes:
    """The ``traceparent`` value in lines ``Tracing.upstream_lines`` wrote (b"": none)."""
    if lines[:13] != TRACEPARENT_LINE:
        return b""
    return lines[13:68]
