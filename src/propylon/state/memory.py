"""Records in this process: a dict kept in least-recently-used order, bounded in entries.

The fastest store and the only one a single worker needs. A flood of distinct keys (random
client ids, spoofed addresses) cannot grow it without limit: past ``max_keys`` entries the
least recently used record is dropped (that key starts afresh: a client whose counter is
evicted gets a new budget, which only an attacker holding ``max_keys`` live keys can force).
Expired records are dropped when they are next read, or when they reach the old end.
"""

from __future__ import annotations

from propylon.state.store import RECORD_WIDTH, StateStore, Transition

EMPTY = (0.0,) * RECORD_WIDTH


class MemoryStore(StateStore):
    __slots__ = ("max_keys", "records")

    kind = "memory"

    def __init__(self, max_keys: int) -> None:
        super().__init__()
        self.max_keys = max(1, max_keys)
        self.records: dict[bytes, list[float]] = {}

    def run(self, transition: Transition, keys: list[bytes], now: float) -> list[float]:
        records = self.records
        held: list[list[float]] = []
        for key in keys:
            # delete + insert moves the key to the recent end: dict order is the LRU order
            # (get and del compile to native calls; pop with a default does not)
            record = records.get(key)
            if record is not None:
                del records[key]
            if record is None or record[0] <= now:
                record = list(EMPTY)
            held.append(record)
        result = transition.apply(held, now)
        # Indexing, not zip(..., strict=True): mypyc compiles neither zip's keyword nor the
        # call, which cost ~2,500 instructions a decision (held matches keys by construction).
        for index, key in enumerate(keys):
            record = held[index]
            if record[0] > now:
                records[key] = record
        excess = len(records) - self.max_keys
        if excess > 0:
            self._evict(excess)
        return result

    def _evict(self, count: int) -> None:
        records = self.records
        for key in _first(records, count):
            del records[key]

    def __len__(self) -> int:
        return len(self.records)


def _first(records: dict[bytes, list[float]], count: int) -> list[bytes]:
    found: list[bytes] = []
    for key in records:
        found.append(key)
        if len(found) >= count:
            break
    return found
