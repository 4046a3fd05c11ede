"""W3C Trace Context (``traceparent``/``tracestate``): kept, created and sent on every request.

Every proxied request carries a ``traceparent`` upstream. A client's is kept when it is valid
(W3C Trace Context s.3.2 and, for versions after ``00``, s.4.3): its trace id and sampled flag
go on, its ``tracestate`` with them; the parent id becomes the gateway's own span id, because
the gateway is a hop. An invalid one is dropped with its ``tracestate`` and a new trace starts,
as when none was sent. The sampled flag of a new trace is the gateway's decision (trace ids
below ``sample_ratio`` of the 64-bit range, OpenTelemetry's ``TraceIdRatioBased``); a
client's decision is respected (parent-based).

Without an OTLP endpoint this is all that happens: a couple of hundred nanoseconds per
request, slices of pre-drawn random hex digits and one joined line. With one,
``Tracing.begin`` keeps a ``Trace`` on each request (ids, a few request facts and wall-clock
timestamps) and, for sampled requests, hands it to the span sink at the end; building and
exporting spans happens off the event loop (``tracing/export.py``, loaded only then).

Ids come from ``os.urandom``, drawn for 1,024 traces at a time (``IdSource``): a
``getrandom()`` syscall, or a random draw and its hex formatting, per request would cost more
than the rest of this.
"""

from __future__ import annotations

import os
import time
from binascii import hexlify
from typing import Final, Protocol

from propylon.http.request import Request

_SHAPE: Final = b"xx-" + b"x" * 32 + b"-" + b"x" * 16 + b"-xx"
_SHAPE_OF: Final = bytes(
    120 if 48 <= c <= 57 or 97 <= c <= 102 else 45 if c == 45 else 33 for c in range(256)
)
"""Maps a lower-case hex digit to ``x``, a dash to itself, anything else to ``!``: one
``translate`` then checks every character of a ``traceparent`` against ``_SHAPE``."""
_ZERO_TRACE: Final = b"0" * 32
_ZERO_SPAN: Final = b"0" * 16
_ID_BUFFER: Final = 1024 * 24
"""Random bytes drawn at once: ids (24 bytes: trace and span) for 1,024 new traces."""
_ZERO_BYTES: Final = bytes(8)
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
    # One translate and one comparison for the shape: about 3x faster compiled than
    # checking the separators, the characters and the dashes' count one by one.
    size = len(value)
    if size != 55:
        if size < 55 or value[55] != 45 or (value[0] == 48 and value[1] == 48):
            return False
        value = value[:55]
    if value.translate(_SHAPE_OF) != _SHAPE:
        return False
    if value[0] == 102 and value[1] == 102:  # version ff
        return False
    return value[3:35] != _ZERO_TRACE and value[36:52] != _ZERO_SPAN


def sent_flags(flags: bytes) -> bytes:
    """The trace-flags to send on for a client's ``flags``: sampled (and level 2's random
    bit) kept, the bits no version defines cleared, as s.3.2.2.5 asks."""
    if flags == b"01" or flags == b"00":
        return flags
    return b"%02x" % (int(flags, 16) & 0x03)


class IdSource:
    """Random ids for one process, as hex digits: ``os.urandom`` fills a buffer for 1,024
    new traces at a time, hexlified once, and each id is a slice of it. Per request that
    is one slice where a random draw and its formatting cost about four times as much.
    Forked workers start afresh (``reset``), so no two share ids."""

    __slots__ = ("hex", "next")

    def __init__(self) -> None:
        self.hex = b""
        self.next = 0

    def reset(self) -> None:
        self.hex = b""
        self.next = 0

    def take(self, digits: int) -> int:
        """Where ``digits`` fresh hex digits start in ``self.hex``."""
        at = self.next
        if at + digits > len(self.hex):
            raw = os.urandom(_ID_BUFFER)
            # No id may be all zeros: redraw in the (2^-64-ish) case of 8 zero bytes.
            while _ZERO_BYTES in raw:
                raw = os.urandom(_ID_BUFFER)
            self.hex = hexlify(raw)
            at = 0
        self.next = at + digits
        return at


_IDS: Final = IdSource()
os.register_at_fork(after_in_child=_IDS.reset)


def span_id() -> bytes:
    """A new span id: 16 hex digits, not all zero."""
    at = _IDS.take(16)
    return _IDS.hex[at : at + 16]


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
        "route",
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
        self.upstream_id = span_id()
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
        self.route = ""
        """The route's template (``http.route``)."""
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
        state = self.state
        return b"traceparent: 00-%s-%s-%s%s" % (
            self.trace_id,
            self.upstream_id,
            self.flags,
            b"" if state is None else TRACESTATE_LINE + state,
        )

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
        bound = int(sample_ratio * (1 << 64))
        self.bound: Final = b"%016x" % bound if bound < 1 << 64 else None
        """New traces whose id's low 64 bits (as 16 hex digits, which compare as the
        numbers do) are below this are sampled; None: all of them."""
        self.sink = sink
        """Set when spans are exported (an OTLP endpoint); None: propagation only."""

    def upstream_lines(self, request: Request) -> bytes:
        """Propagation only: the ``traceparent`` (and ``tracestate``) lines to send
        upstream, continuing the client's trace or beginning one."""
        incoming = request.traceparent
        if incoming is not None and valid_traceparent(incoming):
            # %-formats of bytes only: mypyc compiles them to one sized copy of the pieces
            # (b"".join takes a buffer of each; int formatting would cost more still).
            state = request.tracestate
            return b"traceparent: 00-%s%s-%s%s" % (
                incoming[3:36],
                span_id(),
                sent_flags(incoming[53:55]),
                b"" if state is None else TRACESTATE_LINE + state,
            )
        at = _IDS.take(48)
        ids = _IDS.hex
        return b"traceparent: 00-%s-%s%s" % (
            ids[at : at + 32],
            ids[at + 32 : at + 48],
            b"-01" if self._samples(ids, at) else b"-00",
        )

    def _samples(self, ids: bytes, at: int) -> bool:
        """Whether the new trace id at ``at`` is sampled (OpenTelemetry's
        ``TraceIdRatioBased``: its low 64 bits against the ratio)."""
        bound = self.bound
        return bound is None or ids[at + 16 : at + 32] < bound

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
            at = _IDS.take(32)
            ids = _IDS.hex
            sampled = self._samples(ids, at)
            trace = Trace(sink, ids[at : at + 32], None, b"01" if sampled else b"00", None, sampled)
        if trace.sampled:
            trace.server_id = span_id()
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
