"""The ``tracing-export`` scenario's span account: what the receiver got, and what the gateway
says it exported and dropped.

The gateway's exporter queues each sampled request's trace and sends batches from a thread
(every second, or sooner when a batch fills); a full queue drops spans and counts them, by
design, so a collector that cannot keep up never slows requests. A throughput bought that way
must show: so after the load the harness waits for the exports to stop, reads ``GET /stats``
(its ``tracing`` section) on the proxy port, and later, once the gateway has stopped and sent
what it still held, the receiver's final count. Each proxied request makes two spans (the
request and its upstream call), so "spans per request" near 2 means nothing was dropped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from harness.otlp_receiver import Receiver
from harness.probe import request

STATS_PATH = "/stats"
QUIET_SECONDS = 1.5
"""No new span for this long: the exporter is done (it sends at least every second)."""
SETTLE_TIMEOUT = 15.0
SPANS_PER_REQUEST = 2
"""A SERVER span for the request and a CLIENT span for its upstream call."""


@dataclass(frozen=True, slots=True)
class GatewaySpans:
    exported: int
    dropped: int


def wait_until_quiet(receiver: Receiver) -> None:
    """Returns once no span arrived for QUIET_SECONDS (or after SETTLE_TIMEOUT)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        counts = receiver.counts()
        spans = counts.spans if counts is not None else -1
        now = time.monotonic()
        if spans != last:
            last, since = spans, now
        elif now - since >= QUIET_SECONDS:
            return
        time.sleep(0.25)


def gateway_spans(port: int) -> GatewaySpans | None:
    """The exporter's counters in the gateway's ``/stats``; None when they cannot be read."""
    answer = request(port, STATS_PATH)
    if answer is None or answer.status != 200:
        return None
    try:
        tracing = json.loads(answer.body)["tracing"]
        return GatewaySpans(int(tracing["spans_exported"]), int(tracing["spans_dropped"]))
    except (ValueError, KeyError, TypeError):
        return None


def per_request(spans: int | None, requests: int) -> float | None:
    return spans / requests if spans is not None and requests else None
