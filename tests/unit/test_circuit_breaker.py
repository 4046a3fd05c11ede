"""The circuit breaker's states on a clock the test drives (Ocelot's CircuitBreakerTests)."""

from __future__ import annotations

from propylon.config.model import BreakerSpec
from propylon.policies.circuit_breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


def test_count_mode_opens_after_minimum_throughput_failures_in_a_row() -> None:
    breaker = CircuitBreaker(BreakerSpec(minimum_throughput=3, break_duration=5.0))
    for _ in range(2):
        assert breaker.admit(0.0)
        breaker.record(True, 0.0)
    breaker.record(False, 0.0)  # a success resets the count
    for _ in range(2):
        breaker.record(True, 0.0)
    assert breaker.state == CLOSED
    breaker.record(True, 1.0)
    assert breaker.state == OPEN and not breaker.admit(1.0)
    assert breaker.retry_after(2.0) == 4.0
    assert not breaker.admit(5.99)


def test_half_open_admits_one_probe_whose_outcome_decides() -> None:
    breaker = CircuitBreaker(BreakerSpec(minimum_throughput=2, break_duration=5.0))
    breaker.record(True, 0.0)
    breaker.record(True, 0.0)
    probe, other = object(), object()
    assert breaker.admit(5.0, probe)
    assert breaker.state == HALF_OPEN
    assert not breaker.admit(5.0, other)  # one at a time
    breaker.record(True, 5.5)  # the probe failed: open again, for a whole break
    assert breaker.state == OPEN and not breaker.admit(10.4)
    assert breaker.admit(10.5, probe)
    breaker.record(False, 10.6)
    assert breaker.state == CLOSED and breaker.admit(10.6, other)
    assert breaker.opens == 2


def test_a_probe_without_an_outcome_frees_the_slot_for_the_next_request() -> None:
    breaker = CircuitBreaker(BreakerSpec(minimum_throughput=2, break_duration=1.0))
    breaker.record(True, 0.0)
    breaker.record(True, 0.0)
    probe, refused, nxt = object(), object(), object()
    assert breaker.admit(1.0, probe)
    breaker.abandon(refused)  # a request the breaker refused ends: nothing changes
    assert not breaker.admit(1.0, nxt)
    breaker.abandon(probe)  # the probe's client left before an answer
    assert breaker.admit(1.0, nxt)


def test_ratio_mode_needs_the_minimum_sample_and_the_ratio_within_the_window() -> None:
    spec = BreakerSpec(
        minimum_throughput=4, break_duration=2.0, failure_ratio=0.5, sampling_duration=10.0
    )
    breaker = CircuitBreaker(spec)
    breaker.record(True, 0.0)
    breaker.record(True, 0.0)
    breaker.record(False, 2.0)
    assert breaker.state == CLOSED  # 3 outcomes: below the minimum sample
    breaker.record(False, 11.0)  # the two failures at 0.0 left the window
    breaker.record(True, 11.0)
    assert breaker.state == CLOSED  # 1 of 3 in the window
    breaker.record(True, 11.5)  # 2 of 4: the ratio is reached
    assert breaker.state == OPEN
    assert breaker.admit(13.5)
    breaker.record(False, 13.6)
    assert breaker.state == CLOSED and len(breaker.window) == 0


def test_transitions_are_counted_by_the_state_entered_and_the_state_is_reported() -> None:
    breaker = CircuitBreaker(BreakerSpec(minimum_throughput=1, break_duration=1.0))
    assert breaker.snapshot() == {
        "workers": {"closed": 1, "half_open": 0, "open": 0},
        "transitions": {"closed": 0, "half_open": 0, "open": 0},
    }
    breaker.record(True, 0.0)
    assert breaker.snapshot()["workers"] == {"closed": 0, "half_open": 0, "open": 1}
    assert breaker.admit(1.0)  # the probe
    assert breaker.snapshot()["workers"] == {"closed": 0, "half_open": 1, "open": 0}
    breaker.record(True, 1.0)  # failed: open again
    assert breaker.admit(2.0)
    breaker.record(False, 2.0)  # succeeded: closed
    breaker.record(False, 2.1)  # a success while closed is no transition
    assert breaker.snapshot() == {
        "workers": {"closed": 1, "half_open": 0, "open": 0},
        "transitions": {"closed": 1, "half_open": 2, "open": 2},
    }


def test_ratio_mode_counts_its_transitions_too() -> None:
    spec = BreakerSpec(
        minimum_throughput=2, break_duration=1.0, failure_ratio=0.5, sampling_duration=10.0
    )
    breaker = CircuitBreaker(spec)
    breaker.record(True, 0.0)
    breaker.record(True, 0.0)
    assert breaker.admit(1.0)
    breaker.record(False, 1.0)
    assert breaker.snapshot()["transitions"] == {"closed": 1, "half_open": 1, "open": 1}
