"""Spans over OTLP/HTTP (protobuf), off the request path.

Imported only by a worker whose config names an OTLP endpoint; what it needs is the optional
``[otlp]`` extra (``pip install 'propylon[otlp]'``): the OpenTelemetry SDK describes the
resource (``service.name``, ``OTEL_RESOURCE_ATTRIBUTES``, the SDK's own attributes), the
``opentelemetry-proto`` message classes encode it once, and ``urllib3`` posts the batches.

The request path does almost nothing: a sampled request's ``Trace`` (ids and wall-clock
timestamps, ``tracing/context.py``) is appended to a bounded queue when it ends. A thread of
this worker wakes every ``EXPORT_INTERVAL`` seconds (or when a batch is full), writes each
trace's spans as protobuf (``tracing/otlp.py``: a SERVER span for the request, a CLIENT
child for the upstream call, with the very ids the upstream was sent) and posts the batch,
with a timeout and OTLP's retries. So a slow or dead collector never blocks a request: while
it does not answer, the queue fills and further spans are dropped and counted (``/stats``
``tracing.spans_dropped``), with one warning per outage in the log.

The SDK's own span pipeline (``ReadableSpan`` and its exporter's encoder) is not used: it
cost 90-130 us of the worker's CPU a request, more than proxying it (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from urllib.parse import unquote

import urllib3
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceMessage
from opentelemetry.sdk.resources import Resource
from urllib3.util.retry import Retry

from propylon import __version__
from propylon.config.model import TracingSpec
from propylon.tracing.context import Trace
from propylon.tracing.otlp import SpanEncoder

log = logging.getLogger("propylon.tracing")

MAX_QUEUE = 2048
"""Requests' traces waiting for export, at most (about 2 KiB each); beyond it, dropped."""
BATCH_SIZE = 512
"""Traces per export request (up to twice as many spans, about 300 KB): a post costs the
worker some 350 us of CPU whatever its size, so fewer, larger ones (docs/performance.md)."""
EXPORT_INTERVAL = 1.0
"""Seconds between exports when no batch filled up meanwhile."""
EXPORT_TIMEOUT = 5.0
"""Seconds one export may take, its retries included (about: the last try's own timeout
is a share of it)."""
RETRIES = 3
"""Tries after the first, for what OTLP calls retryable: no connection, 429, 502, 503, 504."""
MAX_RETRY_AFTER = 2.0
"""A collector's ``Retry-After`` is honoured up to this many seconds."""
CLOSE_TIMEOUT = 2.0
"""Seconds a stopping worker waits for its last spans to go out."""
SHUTDOWN_TIMEOUT = 0.5
"""... and then for a retrying export to give up."""


class _ExportRetry(Retry):
    """urllib3's retries, with the collector's ``Retry-After`` capped: a long one would
    hold the exporter while the queue overflows anyway."""

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, MAX_RETRY_AFTER)


def _any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[_any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def resource_message(spec: TracingSpec) -> bytes:
    """This worker's ``Resource``, serialized. Built in the worker (after the fork):
    ``process.pid`` tells the workers apart."""
    resource = Resource.create(
        {
            "service.name": spec.service_name,
            "service.version": __version__,
            "process.pid": os.getpid(),
        }
    )
    pairs = [KeyValue(key=k, value=_any_value(v)) for k, v in resource.attributes.items()]
    encoded: bytes = ResourceMessage(attributes=pairs).SerializeToString()
    return encoded


def _env(name: str, environ: Mapping[str, str]) -> str:
    """The OpenTelemetry exporter variable ``OTEL_EXPORTER_OTLP_TRACES_<name>``, else
    ``OTEL_EXPORTER_OTLP_<name>`` (the SDK's exporter reads the same ones)."""
    return environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or environ.get(
        f"OTEL_EXPORTER_OTLP_{name}", ""
    )


def collector_headers(environ: Mapping[str, str]) -> dict[str, str]:
    """The request headers for the collector: ``Content-Type`` and what
    ``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`` sets (``key=value,key2=value2``, values
    percent-encoded, as the OpenTelemetry specification has it); ``gzip`` when
    ``OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION`` says so."""
    headers = {"Content-Type": "application/x-protobuf"}
    for item in _env("HEADERS", environ).split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if sep and key:
            headers[unquote(key)] = unquote(value.strip())
    if _env("COMPRESSION", environ).strip().lower() == "gzip":
        headers["Content-Encoding"] = "gzip"
    return headers


def _spans_of(trace: Trace) -> int:
    """How many spans ``trace`` makes: the SERVER span, and a CLIENT one if it went upstream
    (what a trace that is lost counts as dropped)."""
    return 2 if trace.upstream_started else 1


class OtlpSink:
    """One worker's span exporter: implements ``tracing.context.SpanSink``."""

    def __init__(
        self,
        spec: TracingSpec,
        *,
        worker_id: int = 0,
        interval: float = EXPORT_INTERVAL,
        timeout: float = EXPORT_TIMEOUT,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        assert spec.otlp_endpoint is not None
        self.endpoint = spec.otlp_endpoint
        self._interval = interval
        self._queue: deque[Trace] = deque()
        scope = InstrumentationScope(name="propylon", version=__version__)
        self._encoder = SpanEncoder(resource_message(spec), scope.SerializeToString())
        self._headers = collector_headers(environ)
        self._gzip = self._headers.get("Content-Encoding") == "gzip"
        # A hanging collector: two tries of half the timeout each. A refused connection or
        # a retryable status: up to RETRIES more, at once, then 0.5 s and 1 s later
        # (urllib3's backoff), or as the collector's Retry-After says, up to MAX_RETRY_AFTER.
        self._retry = _ExportRetry(
            total=RETRIES,
            connect=RETRIES,
            read=1,
            status=RETRIES,
            other=0,
            redirect=0,
            allowed_methods=None,
            status_forcelist=(429, 502, 503, 504),
            backoff_factor=0.25,
            backoff_max=1.0,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        self._pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=1,
            timeout=urllib3.Timeout(total=timeout / 2),
            ca_certs=_env("CERTIFICATE", environ) or None,
            cert_file=_env("CLIENT_CERTIFICATE", environ) or None,
            key_file=_env("CLIENT_KEY", environ) or None,
        )
        self._timeout = timeout
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
        self._overflowing = False
        """Set by the loop when the queue first overflows, cleared by the thread once it
        has room again: one warning per overflow."""

    # -- the event loop's side --------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, trace: Trace) -> None:
        """A sampled request ended: queue it (never waits, never raises)."""
        queue = self._queue
        size = len(queue)
        if size >= MAX_QUEUE or self._closing:
            self._dropped_on_loop += _spans_of(trace)
            if not self._overflowing and not self._closing:
                self._overflowing = True
                log.warning(
                    "spans arrive faster than they are exported to %s: %d requests' spans "
                    "wait; more are dropped and counted (/stats tracing.spans_dropped)",
                    self.endpoint,
                    MAX_QUEUE,
                )
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
        if thread.is_alive():
            # A collector that never answers holds it until the export's timeout: it is a
            # daemon thread, and whatever it sends now is not waited for.
            await asyncio.to_thread(thread.join, SHUTDOWN_TIMEOUT)
        queue = self._queue
        while queue:
            self._dropped_on_loop += _spans_of(queue.popleft())

    # -- the exporter thread ------------------------------------------------------------------
    def _run(self) -> None:
        last_flush = time.monotonic()
        try:
            while True:
                woken = self._wake.wait(self._interval)
                self._wake.clear()
                closing = self._closing
                # Full batches go at once; what is left waits for the interval. Sending
                # whatever is queued after each post would mean, under load, a stream of
                # posts of a few dozen traces, each costing as much CPU as a full one.
                flush = closing or not woken or time.monotonic() - last_flush >= self._interval
                try:
                    self._drain(flush)
                except Exception:
                    # A bug must not end the export for good: this batch is lost, and so
                    # is its count; the next one is tried as usual.
                    log.exception("the span exporter failed")
                if flush:
                    last_flush = time.monotonic()
                if closing:
                    return
        finally:
            self._pool.clear()

    def _drain(self, flush: bool) -> None:
        """Export every full batch in the queue (also those that fill up meanwhile) and,
        when ``flush``, the rest."""
        queue = self._queue
        encoder = self._encoder
        take = queue.popleft
        # Flushing sends what is queued now, not what keeps coming while it posts.
        rest = len(queue) if flush else 0
        while len(queue) >= BATCH_SIZE or rest > 0:
            rest -= BATCH_SIZE
            # The loop over traces runs compiled (add_all): a bug in it must not stop the
            # thread, so what fails is lost, logged and counted, and the rest goes on.
            failed = encoder.add_all([take() for _ in range(min(BATCH_SIZE, len(queue)))])
            if failed:
                log.error(
                    "could not encode the spans of %d requests", len(failed), exc_info=failed[0][1]
                )
                self._dropped_by_export += sum(_spans_of(trace) for trace, _ in failed)
            if encoder.spans:
                count = encoder.spans
                self._export(encoder.take(), count)
        if self._overflowing and len(queue) < MAX_QUEUE:
            self._overflowing = False

    def _export(self, body: bytes, count: int) -> None:
        status = 0
        try:
            response = self._pool.request(
                "POST",
                self.endpoint,
                body=gzip.compress(body, 6) if self._gzip else body,
                headers=self._headers,
                retries=self._retry,
            )
            status = response.status
        except urllib3.exceptions.HTTPError:
            pass  # no connection, or no answer within the timeout, after the retries
        except Exception:
            log.exception("the span exporter failed")
        if 200 <= status < 300:
            self._exported += count
            if self._failing:
                self._failing = False
                log.info("spans are exported to %s again", self.endpoint)
            return
        self._dropped_by_export += count
        if not self._failing:
            self._failing = True
            log.warning(
                "spans cannot be exported to %s (%s); they are dropped and counted until "
                "it answers",
                self.endpoint,
                f"it answered {status}"
                if status
                else f"no answer within {self._timeout:.0f} s, retries included",
            )
