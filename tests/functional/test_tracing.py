"""Tracing through the real engine: W3C trace context reaches the upstream on every proxied
request, and, with an OTLP endpoint, spans reach a real OTLP/HTTP receiver that decodes
them, with the very ids the upstream was sent."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from pathlib import Path

import pytest

from propylon.config.model import TracingSpec
from propylon.plane.chain import Chain
from propylon.plane.stage import Flow, ResponseStage
from propylon.tracing.export import BATCH_SIZE
from tests.support.client import request
from tests.support.gateway import BEARER, config, route, running
from tests.support.otlp import OtlpReceiver
from tests.support.processes import gateway_process, ocelot_file
from tests.support.upstreams import RawUpstream, RecordingUpstream, Seen, free_port

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
CLIENT_TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")


def sent(seen: Seen) -> tuple[str, str, str]:
    """The one traceparent the upstream received: (trace id, parent id, flags)."""
    values = seen.headers_named("traceparent")
    assert len(values) == 1, values
    match = TRACEPARENT.match(values[0])
    assert match is not None, values[0]
    trace, parent, flags = match.groups()
    assert trace != "0" * 32 and parent != "0" * 16
    return trace, parent, flags


async def test_a_valid_traceparent_is_continued_with_the_gateway_as_the_parent() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/items/{id}", up.port))) as gw:
            headers = [("traceparent", CLIENT_TRACEPARENT), ("tracestate", "congo=t61rcWkgMzE")]
            r = await request(gw.port, "GET", "/items/1", headers)
            assert r.status == 200
            trace, parent, flags = sent(up.seen[-1])
            assert (trace, flags) == (TRACE, "01")
            assert parent != PARENT  # the gateway is a hop: its own span id
            assert up.seen[-1].headers_named("tracestate") == ["congo=t61rcWkgMzE"]

            # The client's sampled flag is kept as it is (parent-based).
            r = await request(
                gw.port, "GET", "/items/1", [("traceparent", f"00-{TRACE}-{PARENT}-00")]
            )
            assert sent(up.seen[-1])[::2] == (TRACE, "00")

            # Two tracestate fields are one list (RFC 9110 s.5.3).
            headers = [
                ("traceparent", CLIENT_TRACEPARENT),
                ("tracestate", "a=1"),
                ("tracestate", "b=2"),
            ]
            await request(gw.port, "GET", "/items/1", headers)
            assert up.seen[-1].headers_named("tracestate") == ["a=1,b=2"]

            # A later version is read as 00 is (W3C s.4.3), and sent on as 00.
            await request(
                gw.port, "GET", "/items/1", [("traceparent", f"cc-{TRACE}-{PARENT}-01-what")]
            )
            assert sent(up.seen[-1])[::2] == (TRACE, "01")
    finally:
        await up.close()


async def test_an_absent_or_invalid_traceparent_starts_a_new_trace_and_drops_tracestate() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(route("/items/{id}", up.port))) as gw:
            await request(gw.port, "GET", "/items/1")
            await request(gw.port, "GET", "/items/1")
            first, second = sent(up.seen[0]), sent(up.seen[1])
            assert first[0] != second[0] and first[1] != second[1]
            assert first[2] == second[2] == "01"  # sample_ratio 1.0 by default

            invalid = [
                f"00-{TRACE.upper()}-{PARENT}-01",  # upper-case hex
                f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
                f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
                f"ff-{TRACE}-{PARENT}-01",  # version ff
                f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly 55 characters
                f"00-{TRACE}-{PARENT}",  # too short
                f"00_{TRACE}-{PARENT}-01",
            ]
            for value in invalid:
                headers = [("traceparent", value), ("tracestate", "congo=t61rcWkgMzE")]
                r = await request(gw.port, "GET", "/items/1", headers)
                assert r.status == 200
                trace, _parent, _flags = sent(up.seen[-1])
                assert trace != TRACE, value
                assert up.seen[-1].headers_named("tracestate") == [], value

            # Two traceparents: neither is believed.
            headers = [("traceparent", CLIENT_TRACEPARENT), ("traceparent", CLIENT_TRACEPARENT)]
            await request(gw.port, "GET", "/items/1", headers)
            assert sent(up.seen[-1])[0] != TRACE
            # A look-alike with an underscore never reaches the upstream.
            await request(gw.port, "GET", "/items/1", [("trace_parent", CLIENT_TRACEPARENT)])
            assert up.seen[-1].headers_named("trace_parent") == []
            assert sent(up.seen[-1])[0] != TRACE
    finally:
        await up.close()


async def test_new_traces_follow_the_sample_ratio() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/items/{id}", up.port), tracing=TracingSpec(sample_ratio=0.0))
        async with running(cfg) as gw:
            await request(gw.port, "GET", "/items/1")
            assert sent(up.seen[-1])[2] == "00"
            # The client's decision wins over the ratio.
            await request(gw.port, "GET", "/items/1", [("traceparent", CLIENT_TRACEPARENT)])
            assert sent(up.seen[-1])[::2] == (TRACE, "01")
    finally:
        await up.close()


async def test_spans_reach_the_collector_with_the_ids_the_upstream_received() -> None:
    up = await RecordingUpstream().start()
    collector = await OtlpReceiver().start()
    try:
        cfg = config(
            route("/items/{id}", up.port),
            tracing=TracingSpec(otlp_endpoint=f"{collector.url}/v1/traces", service_name="edge"),
        )
        async with running(cfg) as gw:
            headers = [("traceparent", CLIENT_TRACEPARENT), ("tracestate", "congo=t61rcWkgMzE")]
            r = await request(gw.port, "GET", "/items/7?secret=1", headers, host="api.test:8080")
            assert r.status == 200
            r = await request(gw.port, "GET", "/items/8")  # a trace the gateway begins
            assert r.status == 200
        # Stopping the gateway exports what is queued.
        assert collector.content_types == ["application/x-protobuf"] * collector.posts
        servers, clients = collector.of_kind("SERVER"), collector.of_kind("CLIENT")
        assert len(servers) == 2 and len(clients) == 2

        continued = next(s for s in servers if s.trace_id == TRACE)
        assert continued.name == "GET /items/{id}"
        assert continued.parent_span_id == PARENT  # the client's span
        assert continued.trace_state == "congo=t61rcWkgMzE"
        assert continued.status_code == "STATUS_CODE_UNSET"
        assert continued.resource["service.name"] == "edge"
        assert continued.scope == "propylon"
        assert continued.attributes == {
            "http.request.method": "GET",
            "url.path": "/items/7",  # never the query
            "url.scheme": "http",
            "http.route": "/items/{id}",
            "http.response.status_code": 200,
            "server.address": "api.test",
            "server.port": 8080,
            "client.address": "127.0.0.1",
            "network.protocol.version": "1.1",
        }
        upstream_call = next(c for c in clients if c.trace_id == TRACE)
        assert upstream_call.parent_span_id == continued.span_id
        assert upstream_call.name == "GET"
        assert upstream_call.attributes == {
            "http.request.method": "GET",
            "server.address": "127.0.0.1",
            "server.port": up.port,
            "network.protocol.version": "1.1",
            "http.response.status_code": 200,
        }
        # What the upstream was told is exactly the CLIENT span.
        received = {sent(seen)[:2] for seen in up.seen}
        assert {(c.trace_id, c.span_id) for c in clients} == received
        now = time.time_ns()
        for span in servers + clients:
            assert now - 60 * 10**9 < span.start_ns <= span.end_ns <= now
        assert continued.start_ns <= upstream_call.start_ns <= upstream_call.end_ns

        begun = next(s for s in servers if s.trace_id != TRACE)
        assert begun.parent_span_id == ""  # a root span
        assert gw.stats.snapshot()["tracing"] == {"spans_exported": 4, "spans_dropped": 0}
    finally:
        await collector.close()
        await up.close()


async def test_answers_and_faults_are_spans_too_and_unsampled_requests_are_not() -> None:
    up = await RecordingUpstream().start()
    collector = await OtlpReceiver().start()
    try:
        cfg = config(
            route("/secure", up.port, auth=BEARER),
            route("/dead", free_port()),
            route("/items/{id}", up.port),
            tracing=TracingSpec(otlp_endpoint=f"{collector.url}/v1/traces"),
        )
        async with running(cfg) as gw:
            assert (await request(gw.port, "GET", "/secure")).status == 401
            assert (await request(gw.port, "POST", "/dead")).status == 502
            unsampled = [("traceparent", f"00-{TRACE}-{PARENT}-00")]
            assert (await request(gw.port, "GET", "/items/1", unsampled)).status == 200
            assert sent(up.seen[-1])[::2] == (TRACE, "00")
        by_name = {(s.name, s.kind): s for s in collector.spans}
        assert set(by_name) == {
            ("GET /secure", "SERVER"),
            ("POST /dead", "SERVER"),
            ("POST", "CLIENT"),
        }
        refused = by_name[("GET /secure", "SERVER")]
        assert refused.attributes["http.response.status_code"] == 401
        assert "error.type" not in refused.attributes  # a 4xx is the client's, not an error
        assert refused.status_code == "STATUS_CODE_UNSET"
        dead = by_name[("POST /dead", "SERVER")]
        assert dead.attributes["http.response.status_code"] == 502
        assert dead.attributes["error.type"] == "refused"
        assert dead.status_code == "STATUS_CODE_ERROR"
        call = by_name[("POST", "CLIENT")]
        assert call.parent_span_id == dead.span_id
        assert call.attributes["error.type"] == "refused"
        assert "http.response.status_code" not in call.attributes  # it never answered
    finally:
        await collector.close()
        await up.close()


async def test_a_collector_that_never_answers_costs_requests_nothing_but_a_counter() -> None:
    """The collector accepts connections and never answers: the exporter thread waits on
    it (up to its timeout) while requests go on at full speed; what cannot wait is dropped
    and counted."""
    hung = asyncio.Event()
    release = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.set()
        await release.wait()

    collector = await RawUpstream(never_answer).start()
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/items/{id}", up.port),
            tracing=TracingSpec(otlp_endpoint=f"http://127.0.0.1:{collector.port}/v1/traces"),
        )
        async with running(cfg) as gw:
            # A full batch wakes the exporter at once: it is then stuck.
            for _ in range(BATCH_SIZE):
                assert (await request(gw.port, "GET", "/items/1")).status == 200
            await asyncio.wait_for(hung.wait(), 5)
            slowest = 0.0
            for _ in range(50):
                began = time.perf_counter()
                assert (await request(gw.port, "GET", "/items/1")).status == 200
                slowest = max(slowest, time.perf_counter() - began)
            assert slowest < 0.5
            assert gw.stats.snapshot()["tracing"]["spans_exported"] == 0
            stop_began = time.perf_counter()
        # Stopping waits a bounded time for the last export, then gives up on it.
        assert time.perf_counter() - stop_began < 4.0
        counts = gw.stats.snapshot()["tracing"]
        assert counts["spans_exported"] == 0
        assert counts["spans_dropped"] >= 100  # the 50 last requests' two spans each
    finally:
        release.set()
        await up.close()
        await collector.close()


async def test_every_worker_of_a_gateway_process_exports_its_spans(tmp_path: Path) -> None:
    """``propylon run --workers 2 --otlp-endpoint``: each forked worker has its own
    exporter thread and ids of its own, and SIGTERM's drain sends what is queued."""
    up = await RecordingUpstream().start()
    collector = await OtlpReceiver().start()
    try:
        port = free_port()
        args = ("--otlp-endpoint", collector.url, "--otlp-sample-ratio", "1")
        with gateway_process(ocelot_file(tmp_path, up.port), port, 2, args=args) as proc:
            for _ in range(40):
                r = await request(port, "GET", "/api/things")
                assert r.status == 200
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 20) == 0
        servers = collector.of_kind("SERVER")
        assert len(servers) == 40 and len(collector.of_kind("CLIENT")) == 40
        assert {s.name for s in servers} == {"GET /api/{everything}"}
        assert len({s.trace_id for s in servers}) == 40
        assert {sent(seen)[:2] for seen in up.seen} == {
            (c.trace_id, c.span_id) for c in collector.of_kind("CLIENT")
        }
        # Both workers took requests (SO_REUSEPORT spreads connections): two ids sources.
        assert len({s.resource["process.pid"] for s in servers}) == 2
    finally:
        await collector.close()
        await up.close()


class TraceparentSeen(ResponseStage):
    """What a response stage (the access log is one) reads as the forwarded traceparent."""

    name = "traceparent seen"

    def __init__(self) -> None:
        self.values: list[bytes] = []

    def on_end(self, flow: Flow, status: int, seconds: float) -> None:
        self.values.append(flow.traceparent())


async def test_stages_read_the_traceparent_that_was_forwarded() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(
            config(route("/items/{id}", up.port), route("/secure", up.port, auth=BEARER))
        ) as gw:
            seen = TraceparentSeen()
            for plan in gw.plans:
                plan.chain = Chain(plan.chain.stages, plan.chain.ending, (seen,))
            headers = [("traceparent", CLIENT_TRACEPARENT), ("tracestate", "a=1")]
            await request(gw.port, "GET", "/items/1", headers)
            await request(gw.port, "GET", "/secure")  # 401: nothing was forwarded
            assert seen.values == [up.seen[0].header("traceparent").encode(), b""]
    finally:
        await up.close()


async def test_a_collector_that_is_down_costs_requests_nothing_but_a_counter() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/items/{id}", up.port),
            tracing=TracingSpec(otlp_endpoint=f"http://127.0.0.1:{free_port()}/v1/traces"),
        )
        async with running(cfg) as gw:
            slowest = 0.0
            for _ in range(20):
                began = time.perf_counter()
                assert (await request(gw.port, "GET", "/items/1")).status == 200
                slowest = max(slowest, time.perf_counter() - began)
            assert slowest < 0.5
        assert gw.stats.snapshot()["tracing"] == {"spans_exported": 0, "spans_dropped": 40}
    finally:
        await up.close()


async def test_the_collector_gets_the_otel_exporter_headers_and_gzip(tmp_path: Path) -> None:
    """``OTEL_EXPORTER_OTLP_HEADERS`` (percent-encoded values) and
    ``OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip`` are honoured, as the SDK's exporter does:
    a collector behind an API key, or far away, needs them."""
    up = await RecordingUpstream().start()
    collector = await OtlpReceiver().start()
    try:
        port = free_port()
        env = {
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20k1,x-tenant = blue",
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
        }
        args = ("--otlp-endpoint", collector.url)
        with gateway_process(ocelot_file(tmp_path, up.port), port, 1, env=env, args=args) as proc:
            for _ in range(5):
                assert (await request(port, "GET", "/api/things")).status == 200
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 20) == 0
        assert collector.posts >= 1
        for headers in collector.headers:
            assert headers["authorization"] == "Bearer k1"
            assert headers["x-tenant"] == "blue"
            assert headers["content-encoding"] == "gzip"
            assert headers["content-type"] == "application/x-protobuf"
        assert len(collector.of_kind("SERVER")) == 5  # decoded from the gzip bodies
    finally:
        await collector.close()
        await up.close()


async def test_a_batch_the_collector_refuses_for_a_moment_is_sent_again() -> None:
    """429/502/503/504 are retryable in OTLP: the same batch goes again, nothing is lost."""
    up = await RecordingUpstream().start()
    collector = await OtlpReceiver(refuse=[503, 429]).start()
    try:
        cfg = config(
            route("/items/{id}", up.port),
            tracing=TracingSpec(otlp_endpoint=f"{collector.url}/v1/traces"),
        )
        async with running(cfg) as gw:
            for _ in range(3):
                assert (await request(gw.port, "GET", "/items/1")).status == 200
        assert collector.posts == 3  # two refusals, then the batch
        assert len(collector.spans) == 6
        assert gw.stats.snapshot()["tracing"] == {"spans_exported": 6, "spans_dropped": 0}
    finally:
        await collector.close()
        await up.close()


async def test_a_collector_that_rejects_spans_is_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 400 is not retryable: the batch is dropped, counted, and said once, with the
    status, until the collector takes spans again."""
    up = await RecordingUpstream().start()
    collector = await OtlpReceiver(refuse=[400, 400]).start()
    try:
        cfg = config(
            route("/items/{id}", up.port),
            tracing=TracingSpec(otlp_endpoint=f"{collector.url}/v1/traces"),
        )
        with caplog.at_level(logging.INFO, logger="propylon.tracing"):
            async with running(cfg) as gw:
                for posts in (1, 2, 3):
                    assert (await request(gw.port, "GET", "/items/1")).status == 200
                    # One batch each: the exporter posts within its 1 s interval.
                    for _ in range(50):
                        if collector.posts == posts:
                            break
                        await asyncio.sleep(0.05)
                    assert collector.posts == posts
        assert collector.posts == 3
        assert gw.stats.snapshot()["tracing"] == {"spans_exported": 2, "spans_dropped": 4}
        said = [r.getMessage() for r in caplog.records if r.name == "propylon.tracing"]
        assert said == [
            f"spans cannot be exported to {collector.url}/v1/traces (it answered 400); "
            "they are dropped and counted until it answers",
            f"spans are exported to {collector.url}/v1/traces again",
        ]
    finally:
        await collector.close()
        await up.close()
