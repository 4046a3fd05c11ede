"""A route's circuit breaker: closed, open, half-open (Ocelot 25's built-in one).

Pure state, driven by the clock it is given (the loop's in the gateway, a test's own in
tests). ``admit(now)`` says whether a request may go upstream; ``record(failed, now)`` takes
each outcome of an admitted request.

- Closed: everything is admitted. Count mode: ``minimum_throughput`` failures in a row open
  the circuit (a success resets the count). Ratio mode: the outcomes of the last
  ``sampling_duration`` seconds are kept; once there are ``minimum_throughput`` of them and
  the failed share reaches ``failure_ratio``, the circuit opens.
- Open: nothing is admitted for ``break_duration`` seconds.
- Half-open: one request is admitted (the probe); the others are refused until its outcome
  arrives. A success closes the circuit (and clears the window), a failure opens it again.
  A probe that ends without an upstream outcome (the client left, a later stage refused)
  frees the slot for the next request.

Each transition is counted by the state it enters (``opens``, ``half_opens``, ``closes``);
``snapshot`` reads the state when the admin listener asks, so keeping the numbers costs the
request path nothing beyond those increments on the (rare) transitions.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from propylon.config.model import BreakerSpec

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    __slots__ = (
        "break_duration",
        "closes",
        "failure_ratio",
        "failures",
        "half_opens",
        "minimum_throughput",
        "opened_at",
        "opens",
        "probe",
        "probing",
        "sampling",
        "state",
        "window",
        "window_failures",
    )

    def __init__(self, spec: BreakerSpec) -> None:
        self.minimum_throughput = spec.minimum_throughput
        self.break_duration = spec.break_duration
        self.failure_ratio = spec.failure_ratio
        self.sampling = spec.sampling_duration
        self.state = CLOSED
        self.opened_at = 0.0
        self.probing = False
        self.probe: object = None
        """What the probe in flight is (the caller's token), while half-open."""
        self.failures = 0
        self.window: deque[tuple[float, bool]] = deque()
        self.window_failures = 0
        self.opens = 0
        """How many times the circuit opened (shown in ``/stats``)."""
        self.half_opens = 0
        self.closes = 0
        """Transitions into half-open (a probe's turn) and back to closed."""

    def admit(self, now: float, token: object = None) -> bool:
        state = self.state
        if state == CLOSED:
            return True
        if state == OPEN:
            if now - self.opened_at < self.break_duration:
                return False
            self.state = HALF_OPEN
            self.half_opens += 1
            self.probing = False
        if self.probing:
            return False
        self.probing = True
        self.probe = token
        return True

    def retry_after(self, now: float) -> float:
        """Seconds until a request may be admitted again (0 while half-open)."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.break_duration - now)

    def record(self, failed: bool, now: float) -> None:
        self.probe = None
        if self.failure_ratio is None:
            self._record_count(failed, now)
        else:
            self._record_ratio(failed, now)

    def abandon(self, token: object) -> None:
        """The request ``token`` ended without an outcome to judge: if it was the probe,
        the next request may probe instead."""
        if self.state == HALF_OPEN and self.probing and self.probe is token:
            self.probing = False
            self.probe = None

    def _record_count(self, failed: bool, now: float) -> None:
        if not failed:
            self.failures = 0
            self.probing = False
            if self.state != CLOSED:
                self.state = CLOSED
                self.closes += 1
            return
        self.failures += 1
        if self.state == HALF_OPEN or (
            self.state == CLOSED and self.failures >= self.minimum_throughput
        ):
            self._open(now)

    def _record_ratio(self, failed: bool, now: float) -> None:
        if self.state == HALF_OPEN:
            if failed:
                self._open(now)
            else:
                self.state = CLOSED
                self.closes += 1
                self.probing = False
                self.window.clear()
                self.window_failures = 0
            return
        window = self.window
        cutoff = now - self.sampling
        while window and window[0][0] < cutoff:
            if window.popleft()[1]:
                self.window_failures -= 1
        window.append((now, failed))
        if failed:
            self.window_failures += 1
            ratio = self.failure_ratio
            assert ratio is not None
            if (
                self.state == CLOSED
                and len(window) >= self.minimum_throughput
                and self.window_failures / len(window) >= ratio
            ):
                self._open(now)

    def snapshot(self) -> dict[str, Any]:
        """This worker's breaker for ``/stats``: its state one-hot (so that workers' add up
        to how many have it closed, half-open, open) and its transitions by state entered.
        An open circuit whose break is over reads as open until a request probes it."""
        state = self.state
        return {
            "workers": {
                CLOSED: 1 if state == CLOSED else 0,
                HALF_OPEN: 1 if state == HALF_OPEN else 0,
                OPEN: 1 if state == OPEN else 0,
            },
            "transitions": {CLOSED: self.closes, HALF_OPEN: self.half_opens, OPEN: self.opens},
        }

    def _open(self, now: float) -> None:
        self.state = OPEN
        self.opened_at = now
        self.probing = False
        self.opens += 1
