"""The W3C trace context codec (``tracing/context.py``) and the span sink's bounded queue."""

from __future__ import annotations

import logging
import os
import re

import pytest

from propylon.config.model import TracingSpec
from propylon.http.request import HeaderRules, Request, sort_headers
from propylon.tracing.context import (
    Trace,
    Tracing,
    sent_flags,
    traceparent_of,
    valid_traceparent,
)
from propylon.tracing.export import MAX_QUEUE, OtlpSink
from tests.support.upstreams import free_port

TRACE = b"4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = b"00f067aa0ba902b7"
VALID = b"00-" + TRACE + b"-" + PARENT + b"-01"
LINE = re.compile(rb"traceparent: 00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def request(*headers: tuple[bytes, bytes]) -> Request:
    req = Request(b"GET", b"/a?b=c", True, True)
    sort_headers(req, [(b"Host", b"gw.test"), *headers], HeaderRules(frozenset(), b"x-request-id"))
    return req


@pytest.mark.parametrize(
    "value",
    [
        VALID,
        VALID[:-2] + b"00",
        VALID[:-2] + b"ff",  # unknown flags: the rest is still valid
        b"01" + VALID[2:],  # a later version, same length
        b"cc" + VALID[2:] + b"-more-fields",  # a later version with more fields
    ],
)
def test_valid_traceparents(value: bytes) -> None:
    assert valid_traceparent(value)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        VALID[:-1],  # too short
        VALID + b"-x",  # version 00 has exactly 55 characters
        b"01" + VALID[2:] + b"x",  # a later version's extra fields follow a dash
        b"ff" + VALID[2:],  # version ff is never valid
        VALID.upper(),
        b"00-" + TRACE.upper() + b"-" + PARENT + b"-01",
        b"00-" + b"0" * 32 + b"-" + PARENT + b"-01",
        b"00-" + TRACE + b"-" + b"0" * 16 + b"-01",
        b"00-" + TRACE + b"-" + PARENT + b"-0g",
        b"00-" + TRACE + b"-" + PARENT + b"--1",  # a dash where a digit belongs
        b"00-" + TRACE[:-1] + b"-" + b"-" + PARENT + b"-01",
        b"0x-" + TRACE + b"-" + PARENT + b"-01",
        b"00_" + TRACE + b"-" + PARENT + b"-01",
    ],
)
def test_invalid_traceparents(value: bytes) -> None:
    assert not valid_traceparent(value)


def test_flags_keep_sampled_and_random_and_clear_the_rest() -> None:
    assert [sent_flags(f) for f in (b"00", b"01", b"02", b"03", b"ff", b"fe")] == [
        b"00",
        b"01",
        b"02",
        b"03",
        b"03",
        b"02",
    ]


def test_a_client_trace_is_continued_with_a_new_parent_and_its_tracestate() -> None:
    tracing = Tracing(0.0)  # the ratio applies only to traces the gateway begins
    lines = tracing.upstream_lines(
        request((b"traceparent", b" " + VALID + b" "), (b"TraceState", b"rojo=00f067aa0ba902b7"))
    )
    first, state = lines.split(b"\r\n")
    match = LINE.fullmatch(first)
    assert match is not None
    assert match[1] == TRACE and match[2] != PARENT and match[3] == b"01"
    assert state == b"tracestate: rojo=00f067aa0ba902b7"
    assert traceparent_of(lines) == first[len(b"traceparent: ") :]
    assert traceparent_of(b"") == b""


def test_new_traces_are_random_and_sampled_by_ratio() -> None:
    everything, nothing = Tracing(1.0), Tracing(0.0)
    seen = set()
    for _ in range(200):
        match = LINE.fullmatch(everything.upstream_lines(request()))
        assert match is not None and match[3] == b"01"
        seen.add(match[1])
        match = LINE.fullmatch(nothing.upstream_lines(request((b"tracestate", b"a=1"))))
        assert match is not None and match[3] == b"00"  # and no tracestate line
    assert len(seen) == 200
    half = Tracing(0.5)
    sampled = sum(half.upstream_lines(request()).endswith(b"-01") for _ in range(2000))
    assert 800 < sampled < 1200


class Sink:
    def submit(self, trace: Trace) -> None:
        raise AssertionError("not called by begin")


def test_begin_keeps_the_ids_it_will_send() -> None:
    tracing = Tracing(1.0)
    trace = tracing.begin(request((b"traceparent", VALID)), Sink())
    assert trace.sampled and trace.trace_id == TRACE and trace.parent_id == PARENT
    assert trace.server_id != trace.upstream_id
    match = LINE.fullmatch(trace.upstream_lines())
    assert match is not None and (match[1], match[2]) == (TRACE, trace.upstream_id)
    assert trace.upstream_started > 0 and trace.method == b"GET" and trace.target == b"/a?b=c"

    unsampled = tracing.begin(request((b"traceparent", VALID[:-2] + b"00")), Sink())
    assert not unsampled.sampled and unsampled.started == 0
    begun = Tracing(0.0).begin(request(), Sink())
    assert not begun.sampled and begun.parent_id is None and begun.flags == b"00"


async def test_the_sink_queue_is_bounded_and_counts_what_it_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Submitting never waits: past MAX_QUEUE traces (the thread not started here, as when
    a dead collector holds it), each one is dropped and counted, and the log says so once;
    closing counts the rest."""
    sink = OtlpSink(TracingSpec(f"http://127.0.0.1:{free_port()}/v1/traces"))
    tracing = Tracing(1.0, sink)
    with caplog.at_level(logging.WARNING, logger="propylon.tracing"):
        for _ in range(MAX_QUEUE + 10):
            trace = tracing.begin(request(), sink)
            trace.answered(401, "Unauthorized")  # one span each (nothing went upstream)
    assert sink.counts() == {"spans_exported": 0, "spans_dropped": 10}
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("spans arrive faster than they are exported to http://127.0.0.1:")
    await sink.close()
    assert sink.counts() == {"spans_exported": 0, "spans_dropped": MAX_QUEUE + 10}


def test_a_forked_worker_draws_ids_of_its_own() -> None:
    """Workers are forked: a child must not hand out the ids its parent will."""
    from propylon.tracing.context import span_id

    span_id()  # the buffer is filled before the fork
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(writer, span_id())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    theirs = os.read(reader, 64)
    os.close(reader)
    assert len(theirs) == 16 and theirs != span_id()
