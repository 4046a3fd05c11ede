"""Coarse timeouts for many objects at the cost of one timer.

Every connection has a header deadline or a keep-alive deadline and every exchange has an
upstream deadline. Creating and cancelling a timer handle per request showed up in profiles
(several percent at tens of thousands of requests per second), while the deadlines need no
more than a tenth of a second of precision. So one periodic tick checks them all, and the
hot path only assigns a float.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

RESOLUTION = 0.1


class Watched(Protocol):
    deadline: float

    def expire(self, now: float) -> None: ...


class Watchdog:
    __slots__ = ("_handle", "_items", "_loop", "now")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: set[Watched] = set()
        self._handle: asyncio.TimerHandle | None = None
        self.now = loop.time()
        """The loop's clock as of the last tick: good enough to stamp activity with."""

    def start(self) -> None:
        if self._handle is None:
            self._handle = self._loop.call_later(RESOLUTION, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def watch(self, item: Watched) -> None:
        self._items.add(item)

    def unwatch(self, item: Watched) -> None:
        self._items.discard(item)

    def _tick(self) -> None:
        now = self.now = self._loop.time()
        expired = [item for item in self._items if item.deadline <= now]
        for item in expired:
            item.expire(now)
        self._handle = self._loop.call_later(RESOLUTION, self._tick)


NEVER = math.inf
