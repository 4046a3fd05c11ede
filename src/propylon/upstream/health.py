"""Whether one downstream host is in rotation: passive ejection and the active checks' verdict.

One ``HostHealth`` per ``scheme://host:port`` and worker, shared by every route that lists the
host (its pool holds it). Selectors read ``out_until`` on every pick: ``0.0`` means in
rotation, so a healthy host costs one attribute read. Passive ejection: ``threshold`` failures
in a row take the host out for ``base`` seconds; once back, every further failure before a
success takes it out again for twice as long as the last time (up to ``longest``), so a host
that keeps failing is tried less and less often. An active check (``upstream/checker.py``)
may take a host out until it passes again (``out_until`` infinite), and brings a passively
ejected host back as soon as it passes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from propylon.config.model import EjectionSpec

log = logging.getLogger("propylon.health")

NEVER_EJECTED = EjectionSpec(consecutive_failures=0)


class HostHealth:
    __slots__ = (
        "base",
        "check_streak",
        "checked_down",
        "ejections",
        "failures",
        "key",
        "last_cause",
        "last_ejection",
        "longest",
        "out_until",
        "threshold",
    )

    def __init__(self, key: str, policy: EjectionSpec | None = None) -> None:
        self.key = key
        self.out_until = 0.0
        """When the host comes back (loop clock); 0.0: it is in rotation; inf: an active
        check took it out."""
        self.failures = 0
        """Failures in a row since the last success."""
        self.ejections = 0
        """Ejections since the last success: the next cool-down doubles with each."""
        self.last_ejection = 0.0
        self.last_cause = ""
        self.checked_down = False
        self.check_streak = 0
        """Active checks: passed (> 0) or failed (< 0) in a row."""
        self.threshold = 0
        self.base = 0.0
        self.longest = 0.0
        self.apply(policy or NEVER_EJECTED)

    def apply(self, policy: EjectionSpec) -> None:
        self.threshold = policy.consecutive_failures
        self.base = policy.base
        self.longest = policy.max

    def available(self, now: float) -> bool:
        out = self.out_until
        if out == 0.0:
            return True
        if out <= now:
            # The cool-down is over: back in rotation, on probation (``ejections`` stays
            # until a success, so the next failure takes it out for longer).
            self.out_until = 0.0
            return True
        return False

    # -- what exchanges report ----------------------------------------------------------------
    def failed(self, cause: str, now: float) -> None:
        self.last_cause = cause
        self.failures += 1
        threshold = self.threshold
        if threshold <= 0 or self.out_until != 0.0:
            return
        if self.failures >= threshold or self.ejections > 0:
            cool = min(self.base * (2.0**self.ejections), self.longest)
            self.ejections += 1
            self.last_ejection = cool
            self.out_until = now + cool
            log.warning(
                "upstream %s ejected for %gs after %d failure(s) in a row (last: %s)",
                self.key,
                cool,
                self.failures,
                cause,
            )

    def succeeded(self) -> None:
        self.failures = 0
        self.ejections = 0

    # -- what active checks report ------------------------------------------------------------
    def check_passed(self, healthy_threshold: int) -> None:
        self.check_streak = self.check_streak + 1 if self.check_streak > 0 else 1
        if self.check_streak >= healthy_threshold and (self.checked_down or self.out_until):
            self.checked_down = False
            self.out_until = 0.0
            self.failures = 0
            self.ejections = 0

    def check_failed(self, unhealthy_threshold: int, cause: str) -> None:
        self.check_streak = self.check_streak - 1 if self.check_streak < 0 else -1
        if -self.check_streak >= unhealthy_threshold and not self.checked_down:
            self.checked_down = True
            self.last_cause = cause
            self.out_until = math.inf

    def snapshot(
        self, clock: Callable[[], float], wall_clock: Callable[[], float]
    ) -> dict[str, Any]:
        """``/stats``: up, until when it is out (epoch seconds), and why it last failed."""
        now, wall = clock(), wall_clock()
        up = self.available(now)
        until: float | None = None
        if not up and not math.isinf(self.out_until):
            until = round(wall + (self.out_until - now), 3)
        return {
            "up": up,
            "ejected_until": until,
            "checked_down": self.checked_down,
            "consecutive_failures": self.failures,
            "last_cause": self.last_cause or None,
        }
