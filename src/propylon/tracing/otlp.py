"""OTLP's protobuf, written straight from ``Trace`` records: the exporter thread's hot loop.

Each sampled request becomes a SERVER span and, when it went upstream, a CLIENT child, in
the wire format of ``opentelemetry/proto/trace/v1/trace.proto`` (OTLP 1.x, stable; the field
numbers are below). The resource and the instrumentation scope are built once per worker with
the official message classes (``tracing/export.py``) and spliced in as bytes.

Why not the SDK's objects: building its ``ReadableSpan`` objects and encoding them with
``opentelemetry-exporter-otlp-proto-common`` cost 90-130 us a request, and even building the
``opentelemetry-proto`` messages directly costs about 50 us, more than proxying the request
(docs/performance.md). Here most of a span is constant per route, method, host or status
and is cached as encoded bytes, so a request costs a few microseconds. A property test holds
what this writes to what ``opentelemetry-proto`` decodes (tests/unit/test_otlp_encoding.py).
"""

from __future__ import annotations

from binascii import unhexlify
from struct import Struct
from typing import Final, TypeVar

from propylon.tracing.context import Trace

_TIMES: Final = Struct("<BQBQ")
"""Span fields 7 and 8 (``start_time_unix_nano``, ``end_time_unix_nano``: fixed64)."""
_FLAGS: Final = Struct("<BBI")
"""Span field 16 (``flags``: fixed32; its tag is two bytes)."""
_FLAGS_TAG: Final = 0x85
_HAS_IS_REMOTE: Final = 0x100
_IS_REMOTE: Final = 0x200
"""``SpanFlags``: bits 0-7 are the W3C trace flags; these two say whether the parent is
remote (the client's span) or local (the SERVER span, for the CLIENT child)."""
_SERVER_KIND: Final = b"\x30\x02"  # field 6, SPAN_KIND_SERVER
_CLIENT_KIND: Final = b"\x30\x03"  # SPAN_KIND_CLIENT
_ERROR_STATUS: Final = b"\x7a\x02\x18\x02"  # field 15: Status {code: STATUS_CODE_ERROR}
_PROTOCOL_11: Final = b"1.1"
_Key = TypeVar("_Key")
_MEMO_SIZE: Final = 1024
"""Encoded values kept per attribute; past it the memo starts afresh (clients choose some
of these values, so memory stays bounded whatever they send)."""


_BYTE: Final = tuple(bytes((value,)) for value in range(256))
"""Every byte value as a one-byte ``bytes``, made once: the varints below 128 are these,
and most lengths here are."""
_pack_times: Final = _TIMES.pack  # bound once: no attribute lookup per span
_FLAG_FIELDS: Final = tuple(_FLAGS.pack(_FLAGS_TAG, 1, flags) for flags in range(0x400))
"""Field 16 for every value it takes here (the W3C flags byte and the two remote bits):
a tuple index instead of a Struct.pack call (~550 instructions) per span."""


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _BYTE[value]
    if value < 0x4000:  # a span's length: two bytes, without a call (Struct.pack: ~550)
        return _BYTE[(value & 0x7F) | 0x80] + _BYTE[value >> 7]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a message)."""
    # %-formats of bytes only, here and below: mypyc compiles them to one sized copy of
    # the pieces, where b"".join takes a buffer of each (~100 instructions a piece).
    return b"%s%s%s" % (tag, _varint(len(payload)), payload)


def _utf8(raw: bytes) -> bytes:
    """``raw`` as a protobuf ``string`` must be: valid UTF-8 (bytes that are not become
    U+FFFD)."""
    return raw if raw.isascii() else raw.decode("utf-8", "replace").encode()


def _text(value: str) -> bytes:
    return value.encode("utf-8", "replace")


def string_attribute(key: str, value: bytes) -> bytes:
    """Span field 9: a ``KeyValue`` with a string ``AnyValue`` (``value`` valid UTF-8)."""
    return _string_attribute(_field(b"\x0a", _text(key)) + b"\x12", value)


def _string_attribute(key_part: bytes, value: bytes) -> bytes:
    """``string_attribute`` with the key's part of the ``KeyValue`` made beforehand (its
    field 1, and field 2's tag)."""
    size = len(value)
    value_size = 1 + len(_varint(size)) + size  # AnyValue {string_value: value}
    pair_size = len(key_part) + len(_varint(value_size)) + value_size
    return b"\x4a%s%s%s\x0a%s%s" % (
        _varint(pair_size),
        key_part,
        _varint(value_size),
        _varint(size),
        value,
    )


_URL_PATH: Final = b"\x0a\x08url.path\x12"


def int_attribute(key: str, value: int) -> bytes:
    """Span field 9: a ``KeyValue`` with an int ``AnyValue`` (int64, two's complement)."""
    pair = _field(b"\x0a", _text(key)) + _field(b"\x12", b"\x18" + _varint(value & (2**64 - 1)))
    return _field(b"\x4a", pair)


def url_path(target: bytes) -> bytes:
    """``url.path``: the request target's path, without the query (which may hold secrets).
    An absolute-form target (``http://host/p?q``) gives its path."""
    if target[:1] != b"/":
        scheme = target.find(b"://")
        if scheme >= 0:
            slash = target.find(b"/", scheme + 3)
            target = b"/" if slash < 0 else target[slash:]
    # partition, not find: bytes.find parses its arguments from a tuple (~1,000
    # instructions), partition takes one.
    return target.partition(b"?")[0]


def host_and_port(host: bytes) -> tuple[bytes, int]:
    """``Host`` -> ``server.address``, ``server.port`` (``[::1]:8080`` -> ``::1``, 8080;
    port -1: none given)."""
    if host[:1] == b"[":
        name, _, rest = host[1:].partition(b"]")
        port = rest[1:] if rest[:1] == b":" else b""
    else:
        name, _, port = host.partition(b":")
    return name, int(port) if port.isdigit() and len(port) <= 5 else -1


class SpanEncoder:
    """Collects requests' spans and writes them as one ``ExportTraceServiceRequest``.

    ``resource`` and ``scope``: serialized ``Resource`` and ``InstrumentationScope``
    messages. Used by one thread (the exporter's)."""

    def __init__(self, resource: bytes, scope: bytes) -> None:
        self._resource: Final = _field(b"\x0a", resource)  # ResourceSpans.resource
        self._scope: Final = _field(b"\x0a", scope)  # ScopeSpans.scope
        self._spans: list[bytes] = []
        self._size = 0
        """The bytes in ``_spans``."""
        self.spans = 0
        """Spans collected since the last ``take``."""
        # Encoded pieces, by what they depend on.
        self._server_constants: dict[tuple[bytes, str, bytes, bool], bytes] = {}
        """(method, route, scheme, HTTP/1.1) -> the SERVER span's name, kind and the
        attributes these fix."""
        self._client_constants: dict[bytes, bytes] = {}
        """method -> the CLIENT span's name, kind, method and protocol attributes."""
        self._hosts: dict[bytes, bytes] = {}
        """``Host`` -> server.address (and server.port)."""
        self._upstreams: dict[tuple[str, int], bytes] = {}
        self._clients: dict[str, bytes] = {}
        self._statuses: dict[int, bytes] = {}
        self._errors: dict[str, bytes] = {}

    def add(self, trace: Trace) -> None:
        """Encode the spans of ``trace``, a request that ended (``Trace.sampled``)."""
        # One unhexlify for the three ids the gateway always has (each call costs ~550).
        ids = unhexlify(b"%s%s%s" % (trace.trace_id, trace.server_id, trace.upstream_id))
        trace_id = b"\x0a\x10" + ids[:16]
        server_id = ids[16:24]
        trace_flags = 1 if trace.flags == b"01" else int(trace.flags, 16)
        state = trace.state
        method = trace.method
        route = trace.route
        status = trace.status
        error = trace.error or (str(status) if status >= 500 else "")
        parent = trace.parent_id
        if parent is None:
            parent_field = b""
            flags = trace_flags | _HAS_IS_REMOTE
        else:
            parent_field = b"\x22\x08" + unhexlify(parent)
            flags = trace_flags | _HAS_IS_REMOTE | _IS_REMOTE
        # Field 3; a state that is not ASCII breaks W3C's grammar and is left out.
        state_field = b"" if state is None or not state.isascii() else _field(b"\x1a", state)

        # Name, kind and the attributes these four fix. The times (fields 7 and 8) come
        # before them on the wire: protobuf fields may come in any order.
        constants_key = (method, route, trace.scheme, trace.http11)
        constants = self._server_constants.get(constants_key)
        if constants is None:
            constants = _remember(
                self._server_constants,
                constants_key,
                _field(b"\x2a", _utf8(method) + b" " + _text(route))
                + _SERVER_KIND
                + string_attribute("http.request.method", _utf8(method))
                + string_attribute("url.scheme", _utf8(trace.scheme))
                + string_attribute("http.route", _text(route))
                + string_attribute(
                    "network.protocol.version", _PROTOCOL_11 if trace.http11 else b"1.0"
                ),
            )
        client = self._clients.get(trace.client_address)
        if client is None:
            client = _remember(
                self._clients,
                trace.client_address,
                string_attribute("client.address", _text(trace.client_address)),
            )
        # 499: the client left before an answer; there is no status to report.
        status_attribute = b"" if status == 499 else self._status(status)
        host = trace.host
        host_attributes = b""
        if host is not None:
            host_attributes = self._hosts.get(host, b"")
            if not host_attributes:
                address, port = host_and_port(host)
                host_attributes = string_attribute("server.address", _utf8(address))
                if port >= 0:
                    host_attributes += int_attribute("server.port", port)
                _remember(self._hosts, host, host_attributes)
        server = b"%s\x12\x08%s%s%s%s%s%s%s%s%s%s%s" % (
            trace_id,
            server_id,
            state_field,
            parent_field,
            _pack_times(0x39, trace.started, 0x41, trace.ended),
            constants,
            _string_attribute(_URL_PATH, _utf8(url_path(trace.target))),
            client,
            status_attribute,
            host_attributes,
            self._error(error) + _ERROR_STATUS if error else b"",
            _FLAG_FIELDS[flags],
        )
        # ScopeSpans.spans: each span a whole field (tag, length, body), one piece of the
        # batch (take() joins them).
        server_span = _field(b"\x12", server)
        spans = self._spans
        if not trace.upstream_started:
            spans.append(server_span)
            self._size += len(server_span)
            self.spans += 1
            return
        upstream_status = trace.upstream_status
        client_error = trace.error or (str(upstream_status) if upstream_status >= 400 else "")
        client_constants = self._client_constants.get(method)
        if client_constants is None:
            client_constants = _remember(
                self._client_constants,
                method,
                _field(b"\x2a", _utf8(method))
                + _CLIENT_KIND
                + string_attribute("http.request.method", _utf8(method))
                + string_attribute("network.protocol.version", _PROTOCOL_11),
            )
        upstream_key = (trace.upstream_host, trace.upstream_port)
        upstream = self._upstreams.get(upstream_key)
        if upstream is None:
            upstream = _remember(
                self._upstreams,
                upstream_key,
                string_attribute("server.address", _text(trace.upstream_host))
                + int_attribute("server.port", trace.upstream_port),
            )
        call = b"%s\x12\x08%s%s\x22\x08%s%s%s%s%s%s%s" % (
            trace_id,
            ids[24:32],
            state_field,
            server_id,
            _pack_times(0x39, trace.upstream_started, 0x41, trace.upstream_ended),
            client_constants,
            upstream,
            self._status(upstream_status) if upstream_status else b"",
            self._error(client_error) + _ERROR_STATUS if client_error else b"",
            _FLAG_FIELDS[trace_flags | _HAS_IS_REMOTE],
        )
        call_span = _field(b"\x12", call)
        # Appended only now: a trace adds both of its spans or, should this raise, neither.
        spans.append(server_span)
        spans.append(call_span)
        self._size += len(server_span) + len(call_span)
        self.spans += 2

    def add_all(self, traces: list[Trace]) -> list[tuple[Trace, Exception]]:
        """``add`` each of ``traces``; those that could not be encoded (a bug) are returned
        with their exception, and the others are not held up."""
        failed: list[tuple[Trace, Exception]] = []
        for trace in traces:
            try:
                self.add(trace)
            except Exception as exc:
                failed.append((trace, exc))
        return failed

    def take(self) -> bytes:
        """The ``ExportTraceServiceRequest`` holding every span added since the last call."""
        # One join writes the whole message: a batch is a few hundred KiB, and each copy of
        # it would cost as much as encoding a few dozen spans.
        spans = self._spans
        scope_size = len(self._scope) + self._size
        scope_size_field = _varint(scope_size)
        resource_size = len(self._resource) + 1 + len(scope_size_field) + scope_size
        head = (
            b"\x0a",  # ExportTraceServiceRequest.resource_spans
            _varint(resource_size),
            self._resource,
            b"\x12",  # ResourceSpans.scope_spans
            scope_size_field,
            self._scope,
        )
        self._spans = []
        self._size = 0
        self.spans = 0
        return b"".join((*head, *spans))

    def _status(self, status: int) -> bytes:
        found = self._statuses.get(status)
        if found is None:
            found = _remember(
                self._statuses, status, int_attribute("http.response.status_code", status)
            )
        return found

    def _error(self, error: str) -> bytes:
        found = self._errors.get(error)
        if found is None:
            found = _remember(self._errors, error, string_attribute("error.type", _text(error)))
        return found


def _remember(memo: dict[_Key, bytes], key: _Key, encoded: bytes) -> bytes:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = encoded
    return encoded
