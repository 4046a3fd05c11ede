"""The one state interface: atomic read-modify-write of small records, wherever they live.

Rate-limit counters today, circuit-breaker state and the like later, need the same thing
from their home: read a few small records, decide, write them back, with no other worker or
gateway process interleaving. So a feature describes its decision once as a ``Transition``
(a Python ``apply`` for the in-process and cross-worker stores, and the same logic as a Lua
script for Redis), and a ``StateStore`` runs it atomically over the records named by keys.

A record is ``RECORD_WIDTH`` floats; slot 0 is the time (seconds since the epoch) at which
the record expires, and a record that never existed or has expired reads as all zeros. A
transition sets slot 0 of every record it wants kept; a record with slot 0 at or before
``now`` is dropped. Keys are bytes of bounded length (a feature hashes unbounded input such
as a client-sent header into a fixed-size key before it gets here).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import ClassVar, Final

from mypy_extensions import mypyc_attr

RECORD_WIDTH: Final = 4
"""Floats per record: [expires_at, a, b, c]."""

Done = Callable[[list[float] | None], None]
"""Where ``StateStore.submit`` delivers a decision: its result, or None when the store could
not decide (the caller's failure policy applies)."""


class StoreUnavailable(Exception):
    """The store could not decide (Redis unreachable, timed out or erring): the caller
    applies its failure policy."""


class Transition:
    """One atomic decision over a few records (``apply``), and the same as a Redis script.

    ``apply`` may mutate ``records`` (one list of ``RECORD_WIDTH`` floats per key, in key
    order) and returns the decision as a list of floats; the Lua ``script`` must return the
    same list, as strings, for the same records and time (it reads the time from Redis, so
    that gateways on several machines share one clock).
    """

    __slots__ = ()

    script: ClassVar[str] = ""
    """Lua run by EVALSHA with the keys as KEYS and ``script_args()`` as ARGV."""

    def apply(self, records: list[list[float]], now: float) -> list[float]:
        raise NotImplementedError

    def script_args(self) -> list[str]:
        """ARGV for ``script`` (fixed per transition, so computed once)."""
        raise NotImplementedError


class StoreHealth:
    """What the gateway can export as metrics about its state store."""

    __slots__ = ("down", "failed_decisions", "outages")

    def __init__(self) -> None:
        self.down = False
        """True from the first failed call of an outage until a call succeeds again."""
        self.outages = 0
        """Outages begun (each is logged once, when it begins, and once when it ends)."""
        self.failed_decisions = 0
        """Decisions the store could not make (the failure policy decided them instead)."""


@mypyc_attr(allow_interpreted_subclasses=True)
class StateStore:
    """Where records live: this process, the workers of one gateway, or Redis.

    A ``synchronous`` store decides inside ``run`` (a few microseconds, no I/O wait), so a
    stage can answer at once; otherwise the stage hands the decision to ``submit`` and waits
    for its callback (a remote store sends the decisions that arrive together in one round
    trip).
    """

    __slots__ = ("failure_policy", "health")

    synchronous: ClassVar[bool] = True
    kind: ClassVar[str] = "state"
    """Shown in logs and ``explain``: ``memory``, ``workers`` or ``redis``."""

    def __init__(self, failure_policy: str = "open") -> None:
        self.health = StoreHealth()
        self.failure_policy = failure_policy
        """What a decision the store cannot make becomes: ``open`` (admit) or ``closed``
        (refuse); only a remote store ever fails."""

    def run(self, transition: Transition, keys: list[bytes], now: float) -> list[float]:
        """Decide now (synchronous stores only)."""
        raise NotImplementedError

    def submit(self, transition: Transition, keys: list[bytes], done: Done) -> None:
        """Decide later and call ``done`` once with the result (None: the store could not
        decide), from the event loop and never inside ``submit``, within the store's timeout.
        Must be called from the running event loop."""
        asyncio.get_running_loop().call_soon(done, self.run(transition, keys, time.time()))

    async def run_async(self, transition: Transition, keys: list[bytes]) -> list[float]:
        """Decide, waiting for the store if it is remote; raises ``StoreUnavailable``."""
        return self.run(transition, keys, time.time())

    async def close(self) -> None:
        """Release connections and mappings (idempotent)."""
