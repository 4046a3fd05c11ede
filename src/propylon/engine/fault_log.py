"""Upstream faults in the log: each kind once, then at most once per interval.

A 502 or 504 tells the client that something failed; the operator needs to know what: which
route, which upstream, and why (refused, timeout, reset, DNS, TLS, malformed answer). Each
fault is logged at warning level, but a dead upstream under load fails thousands of times a
second, so a (route, upstream, cause) that was logged in the last ``interval`` seconds is
only counted, and the count is reported with its next line. Keys come from the config
(routes x upstreams x causes), so the table cannot grow with traffic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("propylon.upstream")

CAUSES = {
    "refused": "connection refused",
    "unreachable": "host or network unreachable",
    "dns": "name did not resolve",
    "tls": "TLS handshake or certificate failed",
    "timeout": "timed out",
    "reset": "connection reset",
    "closed": "closed the connection before answering",
    "malformed": "sent a malformed response",
}


class FaultLog:
    __slots__ = ("_clock", "_seen", "interval")

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._seen: dict[tuple[str, str, str], list[float]] = {}
        """key -> [when the next line may be written, faults counted since the last one]"""

    def report(self, route: str, upstream: str, cause: str) -> None:
        key = (route, upstream, cause)
        now = self._clock()
        entry = self._seen.get(key)
        if entry is not None and now < entry[0]:
            entry[1] += 1
            return
        more = int(entry[1]) if entry is not None else 0
        self._seen[key] = [now + self.interval, 0.0]
        log.warning(
            "upstream %s failed for route %s: %s (%s)%s",
            upstream,
            route,
            CAUSES.get(cause, "failed"),
            cause,
            f"; {more} more since the last report" if more else "",
        )
