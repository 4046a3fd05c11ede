"""Spans over OTLP/HTTP (protobuf) through the OpenTelemetry SDK, off the request path.

Imported only by a worker whose config names an OTLP endpoint: the SDK and its exporter are
the optional ``[otlp]`` extra (``pip install 'propylon[otlp]'``).

The request path does almost nothing: a sampled request's ``Trace`` (ids and wall-clock
timestamps, ``tracing/context.py``) is appended to a bounded queue when it ends. A thread of
this worker wakes every ``EXPORT_INTERVAL`` seconds (or when a batch is full), turns each
trace into the SDK's ``ReadableSpan`` objects with the very ids the upstream was sent (a
SERVER span for the request, a CLIENT child for the upstream call) and hands them to the
SDK's ``OTLPSpanExporter``, with a timeout. So a slow or dead collector never blocks a
request: while it does not answer, the queue fills and further spans are dropped and counted
(``/stats`` ``tracing.spans_dropped``), with one warning per outage in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from propylon import __version__
from propylon.config.model import TracingSpec
from propylon.tracing.context import Trace

log = logging.getLogger("propylon.tracing")

MAX_QUEUE = 2048
"""Requests' traces waiting for export, at most (about 2 KiB each); beyond it, dropped."""
BATCH_SIZE = 256
"""Traces per export request (up to twice as many spans)."""
EXPORT_INTERVAL = 1.0
"""Seconds between exports when no batch filled up meanwhile."""
EXPORT_TIMEOUT = 5.0
"""Seconds one export may take, the SDK's retries included."""
CLOSE_TIMEOUT = 2.0
"""Seconds a stopping worker waits for its last spans to go out."""
SHUTDOWN_TIMEOUT = 0.5
"""... and then for the exporter to give up its retries."""

_UNSET = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)


class OtlpSink:
    """One worker's span exporter: implements ``tracing.context.SpanSink``."""

    def __init__(
        self,
        spec: TracingSpec,
        *,
        worker_id: int = 0,
        interval: float = EXPORT_INTERVAL,
        timeout: float = EXPORT_TIMEOUT,
    ) -> None:
        assert spec.otlp_endpoint is not None
        self.endpoint = spec.otlp_endpoint
        self._interval = interval
        self._queue: deque[Trace] = deque()
        # Built in the worker (after the fork): process.pid tells the workers apart.
        self._resource = Resource.create(
            {
                "service.name": spec.service_name,
                "service.version": __version__,
                "process.pid": os.getpid(),
            }
        )
        self._scope = InstrumentationScope("propylon", __version__)
        # The SDK logs every failed or retried batch; a dead collector would flood the log.
        # This sink says it once per outage instead, and counts what it drops.
        logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)
        self._exporter = OTLPSpanExporter(endpoint=self.endpoint, timeout=timeout)
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(
            target=self._run, name=f"propylon-otlp-{worker_id}", daemon=True
        )
        # Each counter has one writer: the event loop (queue full, closing) or the thread.
        self._dropped_on_loop = 0
        self._dropped_by_export = 0
        self._exported = 0
        self._failing = False

    # -- the event loop's side --------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, trace: Trace) -> None:
        """A sampled request ended: queue it (never waits, never raises)."""
        queue = self._queue
        size = len(queue)
        if size >= MAX_QUEUE or self._closing:
            self._dropped_on_loop += 2 if trace.upstream_started else 1
            return
        queue.append(trace)
        if size + 1 == BATCH_SIZE:
            self._wake.set()

    def counts(self) -> dict[str, int]:
        """The counters ``/stats`` shows (``tracing``)."""
        return {
            "spans_exported": self._exported,
            "spans_dropped": self._dropped_on_loop + self._dropped_by_export,
        }

    async def close(self) -> None:
        """Export what is queued (for up to ``CLOSE_TIMEOUT``), then stop the thread."""
        self._closing = True
        self._wake.set()
        thread = self._thread
        if thread.is_alive():
            await asyncio.to_thread(thread.join, CLOSE_TIMEOUT)
        # Ends the exporter's retries too, should a dead collector still hold the thread:
        # a batch waiting to be retried then fails at once, and is counted.
        self._exporter.shutdown()  # type: ignore[no-untyped-call]
        if thread.is_alive():
            # A collector that never answers holds it until the export's timeout: it is a
            # daemon thread, and whatever it sends now is not waited for.
            await asyncio.to_thread(thread.join, SHUTDOWN_TIMEOUT)
        queue = self._queue
        while queue:
            self._dropped_on_loop += 2 if queue.popleft().upstream_started else 1

    # -- the exporter thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closing
            self._drain()
            if closing:
                return

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[ReadableSpan] = []
            for _ in range(min(BATCH_SIZE, len(queue))):
                trace = queue.popleft()
                try:
                    batch.extend(self.spans(trace))
                except Exception:
                    # A bug here must not stop the thread: the trace is lost, and counted.
                    log.exception("could not build the spans of a request")
                    self._dropped_by_export += 2 if trace.upstream_started else 1
            if batch:
                self._export(batch)

    def _export(self, spans: list[ReadableSpan]) -> None:
        try:
            result = self._exporter.export(spans)
        except Exception:
            log.exception("the span exporter failed")
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._exported += len(spans)
            if self._failing:
                self._failing = False
                log.info("spans are exported to %s again", self.endpoint)
            return
        self._dropped_by_export += len(spans)
        if not self._failing:
            self._failing = True
            log.warning(
                "spans cannot be exported to %s (no answer or an error within %.0f s); "
                "they are dropped and counted until it answers",
                self.endpoint,
                EXPORT_TIMEOUT,
            )

    def spans(self, trace: Trace) -> list[ReadableSpan]:
        """The SERVER span of ``trace`` and, when it went upstream, its CLIENT child."""
        trace_id = int(trace.trace_id, 16)
        flags = TraceFlags(int(trace.flags, 16))
        state = _trace_state(trace.state)
        parent = None
        if trace.parent_id is not None:
            parent = SpanContext(trace_id, int(trace.parent_id, 16), True, flags, state)
        server = SpanContext(trace_id, int(trace.server_id, 16), False, flags, state)
        method = trace.method.decode("latin-1")
        route = trace.route
        status = trace.status
        error = trace.error or (str(status) if status >= 500 else "")
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "url.path": _path(trace.target),
            "url.scheme": trace.scheme.decode("latin-1"),
            "http.route": route,
            "client.address": trace.client_address,
            "network.protocol.version": "1.1" if trace.http11 else "1.0",
        }
        if status != 499:
            # 499: the client left before an answer; there is no status to report.
            attributes["http.response.status_code"] = status
        if trace.host is not None:
            host, port = _host_and_port(trace.host.decode("latin-1"))
            attributes["server.address"] = host
            if port is not None:
                attributes["server.port"] = port
        if error:
            attributes["error.type"] = error
        spans = [
            ReadableSpan(
                name=f"{method} {route}",
                context=server,
                parent=parent,
                resource=self._resource,
                attributes=attributes,
                kind=SpanKind.SERVER,
                status=_ERROR if error else _UNSET,
                start_time=trace.started,
                end_time=trace.ended,
                instrumentation_scope=self._scope,
            )
        ]
        if trace.upstream_started:
            upstream_status = trace.upstream_status
            client_error = trace.error or (str(upstream_status) if upstream_status >= 400 else "")
            upstream: dict[str, AttributeValue] = {
                "http.request.method": method,
                "server.address": trace.upstream_host,
                "server.port": trace.upstream_port,
                "network.protocol.version": "1.1",
            }
            if upstream_status:
                upstream["http.response.status_code"] = upstream_status
            if client_error:
                upstream["error.type"] = client_error
            spans.append(
                ReadableSpan(
                    name=method,
                    context=SpanContext(trace_id, int(trace.upstream_id, 16), False, flags, state),
                    parent=server,
                    resource=self._resource,
                    attributes=upstream,
                    kind=SpanKind.CLIENT,
                    status=_ERROR if client_error else _UNSET,
                    start_time=trace.upstream_started,
                    end_time=trace.upstream_ended,
                    instrumentation_scope=self._scope,
                )
            )
        return spans


def _trace_state(raw: bytes | None) -> TraceState | None:
    if raw is None:
        return None
    try:
        return TraceState.from_header([raw.decode("latin-1")])
    except ValueError:
        # Sent on upstream as received; only the exported copy goes without it.
        return None


def _path(target: bytes) -> str:
    """``url.path``: the request target's path, without the query (which may hold
    secrets). An absolute-form target (``http://host/p``) gives its path."""
    text = target.decode("latin-1")
    if text[:1] == "/":
        return text.partition("?")[0]
    return urlsplit(text).path or "/"


def _host_and_port(host: str) -> tuple[str, int | None]:
    """``Host`` -> ``server.address``, ``server.port`` (``[::1]:8080`` -> ``::1``, 8080)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port_text = host.partition(":")
    return name, int(port_text) if port_text.isdigit() else None
