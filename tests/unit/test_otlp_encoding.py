"""What ``tracing/otlp.py`` writes is what ``opentelemetry-proto`` decodes, field for field.

The encoder writes OTLP's protobuf by hand (caching the parts that repeat), so each test
builds ``Trace`` records, encodes them, parses the bytes with the official message classes
(as a collector does) and compares every span with what the request said.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from propylon.tracing.context import Trace
from propylon.tracing.otlp import SpanEncoder, host_and_port, url_path

RESOURCE = Resource(
    attributes=[KeyValue(key="service.name", value=AnyValue(string_value="gw"))]
).SerializeToString()
SCOPE = InstrumentationScope(name="propylon", version="1.2.3").SerializeToString()


class _Sink:
    def submit(self, trace: Trace) -> None:  # pragma: no cover - never called here
        raise AssertionError


def _attributes(span: Span) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in span.attributes:
        kind = pair.value.WhichOneof("value")
        assert kind is not None, pair.key
        assert pair.key not in found, f"{pair.key} twice"
        found[pair.key] = getattr(pair.value, kind)
    return found


def _hex(digits: int) -> st.SearchStrategy[bytes]:
    return (
        st.binary(min_size=digits // 2, max_size=digits // 2)
        .filter(any)
        .map(bytes.hex)
        .map(str.encode)
    )


_TIMES = st.integers(min_value=1, max_value=2**63)
_TEXT = st.text(max_size=20)
_RAW = st.binary(max_size=20)


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    trace = Trace(
        _Sink(),
        draw(_hex(32)),
        draw(st.none() | _hex(16)),
        draw(st.sampled_from([b"01", b"00", b"03", b"02"])),
        draw(st.none() | st.sampled_from([b"", b"a=1,b=2", b"k=v\xc3\xa9"]) | _RAW),
        True,
    )
    trace.server_id = draw(_hex(16))
    trace.started = draw(_TIMES)
    trace.ended = draw(_TIMES)
    trace.status = draw(st.sampled_from([200, 204, 301, 404, 499, 502, 504, 527]))
    trace.error = draw(st.sampled_from(["", "timeout", "connect", "UpstreamBusy"]) | _TEXT)
    trace.route = draw(st.sampled_from(["/a/{id}", "/", "/é/{x}"]) | _TEXT)
    trace.method = draw(st.sampled_from([b"GET", b"POST", b"PURGE"]))
    trace.target = draw(
        st.sampled_from([b"/a/1?token=secret", b"/", b"http://h:8/p/q?x", b"http://h", b"/\xff"])
        | _RAW.map(lambda raw: b"/" + raw)
    )
    trace.host = draw(
        st.none() | st.sampled_from([b"gw.test", b"gw:8080", b"[::1]:9", b"[::1]", b"h:x"]) | _RAW
    )
    trace.scheme = draw(st.sampled_from([b"http", b"https"]))
    trace.http11 = draw(st.booleans())
    trace.client_address = draw(st.sampled_from(["127.0.0.1", "::1"]) | _TEXT)
    if draw(st.booleans()):
        trace.upstream_started = draw(_TIMES)
        trace.upstream_ended = draw(_TIMES)
        trace.upstream_status = draw(st.sampled_from([0, 200, 404, 503]))
        trace.upstream_host = draw(st.sampled_from(["10.0.0.1", "svc.internal"]) | _TEXT)
        trace.upstream_port = draw(st.integers(min_value=1, max_value=65535))
    return trace


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _check_server(span: Span, trace: Trace) -> None:
    assert span.trace_id.hex() == trace.trace_id.decode()
    assert span.span_id.hex() == trace.server_id.decode()
    assert span.parent_span_id.hex() == (trace.parent_id or b"").decode()
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.name == f"{_text(trace.method)} {trace.route}"
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (trace.started, trace.ended)
    state = trace.state
    assert span.trace_state == (state.decode() if state is not None and state.isascii() else "")
    remote = 0x300 if trace.parent_id is not None else 0x100
    assert span.flags == int(trace.flags, 16) | remote
    error = trace.error or (str(trace.status) if trace.status >= 500 else "")
    expected: dict[str, Any] = {
        "http.request.method": trace.method.decode(),
        "url.path": _text(url_path(trace.target)),
        "url.scheme": trace.scheme.decode(),
        "http.route": trace.route,
        "client.address": trace.client_address,
        "network.protocol.version": "1.1" if trace.http11 else "1.0",
    }
    if trace.status != 499:
        expected["http.response.status_code"] = trace.status
    if trace.host is not None:
        address, port = host_and_port(trace.host)
        expected["server.address"] = _text(address)
        if port >= 0:
            expected["server.port"] = port
    if error:
        expected["error.type"] = error
    assert _attributes(span) == expected
    code = Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET
    assert span.status.code == code
    assert span.status.message == ""


def _check_client(span: Span, trace: Trace) -> None:
    assert span.trace_id.hex() == trace.trace_id.decode()
    assert span.span_id.hex() == trace.upstream_id.decode()
    assert span.parent_span_id.hex() == trace.server_id.decode()
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.name == trace.method.decode()
    times = (span.start_time_unix_nano, span.end_time_unix_nano)
    assert times == (trace.upstream_started, trace.upstream_ended)
    assert span.flags == int(trace.flags, 16) | 0x100  # its parent (the SERVER span) is local
    status = trace.upstream_status
    error = trace.error or (str(status) if status >= 400 else "")
    expected: dict[str, Any] = {
        "http.request.method": trace.method.decode(),
        "server.address": trace.upstream_host,
        "server.port": trace.upstream_port,
        "network.protocol.version": "1.1",
    }
    if status:
        expected["http.response.status_code"] = status
    if error:
        expected["error.type"] = error
    assert _attributes(span) == expected
    code = Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET
    assert span.status.code == code


def _decode(body: bytes) -> list[Span]:
    message = ExportTraceServiceRequest.FromString(body)
    assert len(message.resource_spans) == 1
    resource_spans = message.resource_spans[0]
    assert resource_spans.resource.SerializeToString() == RESOURCE
    assert len(resource_spans.scope_spans) == 1
    scope_spans = resource_spans.scope_spans[0]
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("propylon", "1.2.3")
    return list(scope_spans.spans)


@settings(max_examples=300, deadline=None)
@given(st.lists(traces(), min_size=1, max_size=6))
def test_spans_decode_as_they_were_recorded(batch: list[Trace]) -> None:
    encoder = SpanEncoder(RESOURCE, SCOPE)
    # Twice through one encoder: the second pass is served from its caches.
    for _ in range(2):
        for trace in batch:
            encoder.add(trace)
        expected_count = sum(2 if trace.upstream_started else 1 for trace in batch)
        assert encoder.spans == expected_count
        spans = _decode(encoder.take())
        assert encoder.spans == 0
        assert len(spans) == expected_count
        position = 0
        for trace in batch:
            _check_server(spans[position], trace)
            position += 1
            if trace.upstream_started:
                _check_client(spans[position], trace)
                position += 1


def test_an_empty_take_is_a_valid_request() -> None:
    assert _decode(SpanEncoder(RESOURCE, SCOPE).take()) == []


def test_caches_stay_bounded_whatever_clients_send() -> None:
    encoder = SpanEncoder(RESOURCE, SCOPE)
    for n in range(5000):
        trace = Trace(_Sink(), b"1" * 32, None, b"01", None, True)
        trace.server_id = b"2" * 16
        trace.started, trace.ended, trace.status = 1, 2, 200
        trace.route, trace.method, trace.target = "/r", b"GET", b"/r"
        trace.host = b"h%d.test" % n  # the client chooses its Host
        trace.client_address = f"10.0.{n // 256}.{n % 256}"
        encoder.add(trace)
        if n % 500 == 0:
            encoder.take()
    sizes = [len(memo) for memo in (encoder._hosts, encoder._clients)]
    assert max(sizes) <= 1024
    spans = _decode(encoder.take())
    assert _attributes(spans[-1])["server.address"] == "h4999.test"


def test_url_path_and_host_split() -> None:
    assert url_path(b"/a/b?token=x") == b"/a/b"
    assert url_path(b"http://h:8/p?q") == b"/p"
    assert url_path(b"http://h") == b"/"
    assert host_and_port(b"[::1]:8080") == (b"::1", 8080)
    assert host_and_port(b"gw.test") == (b"gw.test", -1)
    assert host_and_port(b"gw:99999999") == (b"gw", -1)
