"""A bounded latency histogram: fixed log-spaced buckets, cheap to record, exact to merge.

Buckets grow by a constant ratio (8 per doubling) from 50 µs to 60 s, so memory is fixed
whatever the traffic, any two histograms merge by adding counts, and a percentile read from
the bucket's geometric middle is within ``RELATIVE_ERROR`` of the exact sample value. Values
below 50 µs share one underflow bucket (absolute error under 50 µs); values from 60 s up share
an overflow bucket, reported as the largest value seen.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

LOWEST = 50e-6
HIGHEST = 60.0
BUCKETS_PER_DOUBLING = 8
RATIO = 2.0 ** (1.0 / BUCKETS_PER_DOUBLING)
LOG_BUCKETS = math.ceil(math.log(HIGHEST / LOWEST) / math.log(RATIO))
"""Log-spaced buckets between LOWEST and the overflow edge; one more on each side."""
OVERFLOW_EDGE = LOWEST * RATIO**LOG_BUCKETS
RELATIVE_ERROR = math.sqrt(RATIO) - 1.0
SCHEME = f"log2/{BUCKETS_PER_DOUBLING}:{LOWEST:g}:{LOG_BUCKETS}"
"""Names the bucket layout so histograms from another layout are never added together."""

EDGES = tuple(LOWEST * RATIO**i for i in range(LOG_BUCKETS + 1))
"""Lower edges of buckets 1..LOG_BUCKETS+1, so ``bisect_right(EDGES, seconds)`` is the bucket:
0 holds [0, LOWEST) and any negative clock oddity, i holds [EDGES[i-1], EDGES[i]), the last
everything from OVERFLOW_EDGE up. A binary search in C costs less than ``int(log(x) * k)`` and
never puts a value on the wrong side of an edge through rounding."""
_OVERFLOW = LOG_BUCKETS + 1
_SIZE = LOG_BUCKETS + 2


def _representative(index: int) -> float:
    if index == 0:
        return LOWEST / 2
    return float(LOWEST * RATIO ** (index - 0.5))


class LatencyHistogram:
    __slots__ = ("counts", "max")

    def __init__(self) -> None:
        self.counts = [0] * _SIZE
        self.max = 0.0

    @property
    def count(self) -> int:
        # Summed when read rather than kept: recording is hot, reading is rare.
        return sum(self.counts)

    def record(self, seconds: float) -> None:
        # RouteStats.end carries a copy of these three lines; change both together.
        self.counts[bisect_right(EDGES, seconds)] += 1
        if seconds > self.max:
            self.max = seconds

    def percentile(self, q: float) -> float | None:
        """Seconds below or at which a fraction ``q`` (0..1) of the samples fall (nearest rank).

        None when nothing was recorded.
        """
        count = self.count
        if count == 0:
            return None
        rank = max(1, math.ceil(min(max(q, 0.0), 1.0) * count))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                if index == _OVERFLOW:
                    return self.max
                # The true sample is at most the maximum, so this only ever narrows the error.
                return min(_representative(index), self.max)
        return self.max  # unreachable while count == sum(counts)

    def merge(self, other: LatencyHistogram) -> None:
        counts = self.counts
        for index, n in enumerate(other.counts):
            if n:
                counts[index] += n
        self.max = max(self.max, other.max)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable and sparse: only non-empty buckets, as [index, count] pairs."""
        return {
            "scheme": SCHEME,
            "count": self.count,
            "max": self.max if math.isfinite(self.max) else OVERFLOW_EDGE,
            "buckets": [[i, n] for i, n in enumerate(self.counts) if n],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyHistogram:
        if data.get("scheme") != SCHEME:
            raise ValueError(f"histogram scheme {data.get('scheme')!r} is not {SCHEME!r}")
        histogram = cls()
        for index, n in data["buckets"]:
            if not (isinstance(index, int) and 0 <= index < _SIZE and isinstance(n, int) and n > 0):
                raise ValueError(f"bad histogram bucket {[index, n]!r}")
            histogram.counts[index] += n
        histogram.max = float(data["max"])
        return histogram
