"""The upstream fault log: once per (route, upstream, cause) per interval, with a count."""

from __future__ import annotations

import logging

import pytest

from propylon.engine.fault_log import FaultLog


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_repeats_are_counted_and_reported_with_the_next_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="propylon.upstream")
    clock = Clock()
    faults = FaultLog(interval=10.0, clock=clock)
    for _ in range(500):
        faults.report("GET /a", "svc:80", "refused")
    faults.report("GET /a", "svc:80", "timeout")  # another cause is another line
    clock.now += 10.0
    faults.report("GET /a", "svc:80", "refused")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "upstream svc:80 failed for route GET /a: connection refused (refused)",
        "upstream svc:80 failed for route GET /a: timed out (timeout)",
        "upstream svc:80 failed for route GET /a: connection refused (refused)"
        "; 499 more since the last report",
    ]
