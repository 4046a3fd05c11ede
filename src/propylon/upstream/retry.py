"""Whether a failed try of a request is sent again, after how long, and the retry budget.

A try can fail in three ways before any byte of an answer arrived (after one, the client
has, or is about to have, part of a response: nothing is retried):

- ``UNSENT``: the request never reached the service. The connection was never made
  (refused, unreachable, DNS, TLS, connect timeout), the host's pool queue was full or timed
  out, or the host was taken out while the request queued. Every method may go again, with
  its body: the gateway still holds all of it, since nothing was written.
- ``STALE``: a reused keep-alive connection was closed or reset before one byte of the
  answer: almost always the upstream closing an idle connection just as the gateway reused
  it (RFC 9112 s.9.3.1). Retried for a body-less idempotent request on every route.
- ``SENT``: anything else (a reset or close of a fresh connection, a per-try timeout). The
  service may have acted on it, so only the methods the route lists go again, and only with
  a body small enough to have been kept (``replay_body_bytes``); a larger one streamed up
  and is gone, so such a request is never replayed.

Every retry also needs the route's budget (``RetryBudget``): at most ``ratio`` of the
route's requests plus ``floor`` per second, so a total outage costs the upstreams at most
that share more load, never a multiple of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from propylon.config.model import RETRY_METHODS, RetrySpec

UNSENT: Final = 0
STALE: Final = 1
SENT: Final = 2

_IDEMPOTENT = frozenset(m.encode("ascii") for m in RETRY_METHODS)
BUDGET_SECONDS = 10.0
"""The budget never holds more than this many seconds of its floor (plus one retry): a long
quiet spell does not save up a burst of retries for the next outage."""


class RetryBudget:
    """Envoy's retry budget as a token bucket: between two withdrawals it earns the larger of
    ``ratio`` of a retry per request of the route and ``floor`` retries per second; each
    retry takes one.

    Deposits are counted when a retry asks, from the route's request counter (which the
    route's stats keep anyway), so a request that needs no retry pays nothing here."""

    __slots__ = ("cap", "clock", "floor", "last", "ratio", "seen", "tokens")

    def __init__(self, ratio: float, floor: float, clock: Callable[[], float]) -> None:
        self.ratio = ratio
        self.floor = floor
        self.clock = clock
        self.cap = max(1.0, floor * BUDGET_SECONDS)
        self.tokens = self.cap
        self.seen = 0
        self.last = clock()

    def withdraw(self, requests: int) -> bool:
        """Take one retry if there is one; ``requests``: the route's requests so far."""
        now = self.clock()
        # The larger of the two, not their sum (as Envoy's budget takes the larger of its
        # percentage and its minimum): a busy route's retries stay within ``ratio`` of its
        # requests, a quiet one still gets its ``floor`` a second.
        earned = max((requests - self.seen) * self.ratio, (now - self.last) * self.floor)
        self.seen = requests
        self.last = now
        # Asked on every failure, a busy route's deposits arrive a few at a time, so the
        # cap bounds only what a quiet spell saves up, not the share of a busy route.
        tokens = min(self.tokens + earned, self.cap)
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


class RetryPolicy:
    """A route's ``RetrySpec``, ready for the request path (built once per route)."""

    __slots__ = (
        "attempts",
        "backoff",
        "backoff_max",
        "budget",
        "methods",
        "per_try_timeout",
        "random",
        "replay_limit",
    )

    def __init__(
        self, spec: RetrySpec, clock: Callable[[], float], rng: random.Random | None = None
    ) -> None:
        self.attempts = spec.attempts
        self.methods = frozenset(m.encode("ascii") for m in spec.methods)
        self.per_try_timeout = spec.per_try_timeout or 0.0
        self.backoff = spec.backoff
        self.backoff_max = spec.backoff_max
        self.replay_limit = spec.replay_body_bytes if self.methods else -1
        """The largest body kept for a replay; -1: none is (the route replays nothing)."""
        self.budget = RetryBudget(spec.budget_ratio, spec.budget_floor, clock)
        # Not a secret: how long to wait before a retry.
        self.random = rng or random.Random()  # noqa: S311

    def qualifies(self, failure: int, method: bytes, has_body: bool) -> bool:
        """Whether a try that failed this way may be sent again (attempts and budget
        aside)."""
        if failure == UNSENT:
            return True
        if failure == STALE and not has_body and method in _IDEMPOTENT:
            return True
        return method in self.methods

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first): full jitter."""
        ceiling = min(self.backoff * (2.0 ** (retry - 1)), self.backoff_max)
        return self.random.uniform(0.0, ceiling) if ceiling > 0.0 else 0.0
