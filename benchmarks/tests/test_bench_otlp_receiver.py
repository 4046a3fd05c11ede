"""The tracing-export receiver as the gateway's exporter meets it: a real process on a
loopback port, a few requests only."""

import gzip
import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.otlp_receiver import TRACES_PATH, Receiver, proto_available

pytestmark = pytest.mark.skipif(
    not proto_available(), reason="needs opentelemetry-proto (the [otlp] extra)"
)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    started = Receiver.start(tmp_path, "", dict(os.environ), tmp_path / "receiver.log")
    assert isinstance(started, Receiver), started
    try:
        yield started
    finally:
        started.stop()


def export_request(spans: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    message = ExportTraceServiceRequest()
    scope = message.resource_spans.add().scope_spans.add()
    for n in range(spans):
        span = scope.spans.add()
        span.name = f"GET /profiles/{{id}} {n}"
        span.trace_id = bytes(range(16))
        span.span_id = n.to_bytes(8, "big")
    body: bytes = message.SerializeToString()
    return body


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", TRACES_PATH, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_spans_are_decoded_counted_and_answered_with_an_empty_response(
    receiver: Receiver,
) -> None:
    protobuf = {"Content-Type": "application/x-protobuf"}

    first = post(receiver.port, export_request(3), protobuf)
    second = post(
        receiver.port, gzip.compress(export_request(2)), {**protobuf, "Content-Encoding": "gzip"}
    )

    assert first == second == (200, b"")  # an empty ExportTraceServiceResponse
    counts = receiver.counts()
    assert counts is not None and (counts.posts, counts.spans, counts.rejected) == (2, 5, 0)


def test_a_body_that_is_no_export_request_is_refused_and_counted(receiver: Receiver) -> None:
    status, _ = post(receiver.port, b"\xff\xff\xff not protobuf", {})

    counts = receiver.counts()
    assert status == 400
    assert counts is not None and (counts.posts, counts.spans, counts.rejected) == (0, 0, 1)
