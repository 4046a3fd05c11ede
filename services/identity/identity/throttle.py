"""Login throttling: after N failures for one username inside a window, refuse for a while.

In memory, per process: enough for one identity instance. The key is the username as typed
(lower-cased), known or not, so the throttle itself does not reveal which names exist.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        lockout_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
    ) -> None:
        self._max_failures = max_failures
        self._window = window_seconds
        self._lockout = lockout_seconds
        self._clock = clock
        self._max_tracked = max_tracked
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str) -> float | None:
        """Seconds until this username may try again, or None if it may try now."""
        now = self._clock()
        with self._lock:
            record = self._records.get(username.lower())
            if record is None or record.locked_until <= now:
                return None
            return record.locked_until - now

    def record_failure(self, username: str) -> None:
        now = self._clock()
        with self._lock:
            key = username.lower()
            record = self._records.get(key)
            if record is None:
                self._make_room(now)
                record = self._records[key] = _Record()
            record.failures = [t for t in record.failures if now - t < self._window]
            record.failures.append(now)
            if len(record.failures) >= self._max_failures:
                record.locked_until = now + self._lockout
                record.failures.clear()

    def record_success(self, username: str) -> None:
        with self._lock:
            self._records.pop(username.lower(), None)

    def _make_room(self, now: float) -> None:
        # Bounded memory under a spray of usernames: drop stale records, then the oldest.
        if len(self._records) < self._max_tracked:
            return
        stale = [
            key
            for key, record in self._records.items()
            if record.locked_until <= now and all(now - t >= self._window for t in record.failures)
        ]
        for key in stale:
            del self._records[key]
        while len(self._records) >= self._max_tracked:
            del self._records[next(iter(self._records))]
