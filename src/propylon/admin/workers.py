"""The admin process's view of the workers: their snapshots, over the stats exchange.

Each worker serves its snapshot on ``stats-<id>.sock`` in the run directory (the same
exchange that lets any worker answer the public ``/stats`` for all). A worker that is dead,
restarting or slow is left out after ``timeout``, and ``workers_reporting`` says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from propylon.admin.readiness import Readiness, read_readiness
from propylon.stats.exchange import fetch_snapshot, socket_path

STATE_COUNTERS = ("outages", "failed_decisions")


@dataclass(frozen=True, slots=True)
class WorkerGroup:
    run_dir: str
    workers: int
    timeout: float = 1.0

    async def snapshots(self) -> list[dict[str, Any]]:
        """Every answering worker's own snapshot (with its extras), in worker order."""
        answers = await asyncio.gather(
            *(
                fetch_snapshot(socket_path(self.run_dir, i), self.timeout)
                for i in range(self.workers)
            )
        )
        return [a for a in answers if a is not None]

    def readiness(self) -> Readiness:
        return read_readiness(self.run_dir, self.workers)


def state_health(snapshots: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The state stores' health, per store kind, added up over the workers (``down``: any
    worker's store is down)."""
    kinds: dict[str, dict[str, Any]] = {}
    for snapshot in snapshots:
        state = snapshot.get("state")
        if not isinstance(state, dict):
            continue
        kind = str(state.get("kind", "state"))
        into = kinds.setdefault(kind, {"down": 0, "outages": 0, "failed_decisions": 0})
        into["down"] += 1 if state.get("down") else 0
        for name in STATE_COUNTERS:
            value = state.get(name)
            if isinstance(value, int):
                into[name] += value
    return kinds
