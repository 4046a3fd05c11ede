"""The circuit breaker's two stages: the gate before upstream, the tally at every end.

``BreakerGate`` (a request stage, last in the route's chain so that only requests about to go
upstream are gated) refuses with 503 ``CircuitOpen`` and ``Retry-After`` while the circuit is
open, and lets one probe through while it is half-open. ``BreakerTally`` (a response stage)
judges every exchange of the route by the status the client got: 500-508 are failures
(upstream 5xx as in Ocelot, and the gateway's own 502 for connect errors and resets and 504
for timeouts); any other status is a success. Answers a stage made (the breaker's own 503,
a 401, a 429, the 503 of a route whose hosts are all out) and clients that left (499) are
not outcomes: a probe that ends so frees the slot for the next request.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from propylon import errors
from propylon.plane.stage import CONTINUE, Flow, RequestStage, ResponseStage
from propylon.policies.circuit_breaker import CircuitBreaker

FAILURE_STATUSES = frozenset(range(500, 509))
"""Ocelot's ``CircuitBreakerDelegatingHandler.DefaultServerErrorCodes``."""
CLIENT_GONE = 499


class BreakerGate(RequestStage):
    name = "circuit_breaker"

    def __init__(self, breaker: CircuitBreaker, clock: Callable[[], float]) -> None:
        self.breaker = breaker
        self.clock = clock

    def on_request(self, flow: Flow) -> int:
        breaker = self.breaker
        now = self.clock()
        if breaker.admit(now, flow):
            return CONTINUE
        wait = max(1, math.ceil(breaker.retry_after(now)))
        return flow.refuse(errors.CIRCUIT_OPEN, (("Retry-After", str(wait)),))


class BreakerTally(ResponseStage):
    name = "circuit_breaker_tally"

    def __init__(self, breaker: CircuitBreaker, clock: Callable[[], float]) -> None:
        self.breaker = breaker
        self.clock = clock

    def on_end(self, flow: Flow, status: int, seconds: float) -> None:
        breaker = self.breaker
        if flow.reply is not None or status == CLIENT_GONE:
            breaker.abandon(flow)
            return
        breaker.record(status in FAILURE_STATUSES, self.clock())
