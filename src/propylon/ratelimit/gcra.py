"""GCRA, the generic cell rate algorithm: the native format's limits.

Each key has one number, its theoretical arrival time ``tat``: the moment its bucket will be
empty again. A request at ``now`` would move it to ``max(tat, now) + interval`` (``interval =
period / limit``); it is admitted when that stays within ``period`` of ``now``. So a key may
burst ``limit`` requests at once, and then gets one every ``interval``: "100 per minute"
admits at most 100 at once and 100 per minute sustained, smoothly, with no window edge at
which a client gets a whole new budget at once (the fixed window's flaw: 200 in a second
around the edge), in one float per key (a sliding log keeps every timestamp; a
sliding-window counter keeps two counters and is only approximate). The price: a client
idle for a whole period may, in the worst case, send its burst and then the refill, so one
stretch of ``period`` can see up to ``2 * limit - 1``; what is bounded exactly is the burst
and the rate.

A route with several limits (10 per second and 1000 per hour) decides them together: the
request is admitted only if every limit has room, and then counts against all of them; a
refused request counts against none.
"""

from __future__ import annotations

import math
from typing import Final

from propylon.state.store import Transition

# Float rounding must not refuse the last request of a burst (3 * (1/3) > 1 by a hair).
SLACK: Final = 1e-9

SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #KEYS
local allowed = 1
local tats = {}
local news = {}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  news[i] = tat + interval
  if news[i] - now > period * (1 + 1e-9) then allowed = 0 end
end
local out = {tostring(allowed), string.format('%.6f', now)}
for i = 1, n do
  if allowed == 1 then
    local ttl = math.ceil((news[i] - now) * 1000) + 1
    redis.call('SET', KEYS[i], string.format('%.6f', news[i]), 'PX', ttl)
    out[i + 2] = string.format('%.6f', news[i])
  else
    out[i + 2] = string.format('%.6f', tats[i])
  end
end
return out
"""


class Gcra(Transition):
    """The limits of one route, decided together. Records: ``[expires, tat, 0, 0]``.
    Result: ``[admitted (1/0), now, tat_0, tat_1, ...]`` (each ``tat`` after the request
    when admitted, before it when refused)."""

    __slots__ = ("args", "interval", "intervals", "period", "periods", "single")

    script = SCRIPT

    def __init__(self, limits: list[int], periods: list[float]) -> None:
        self.intervals = [period / limit for limit, period in zip(limits, periods, strict=True)]
        self.periods = list(periods)
        self.single = len(self.intervals) == 1
        # The one limit's numbers as plain float attributes (mypyc keeps them unboxed).
        self.interval: float = self.intervals[0] if self.single else 0.0
        self.period: float = self.periods[0] if self.single else 0.0
        self.args: list[str] = []
        for interval, period in zip(self.intervals, self.periods, strict=True):
            self.args.append(repr(interval))
            self.args.append(repr(period))

    def script_args(self) -> list[str]:
        return self.args

    def apply(self, records: list[list[float]], now: float) -> list[float]:
        if self.single:
            # One limit (the usual case): the loop below, without its lists.
            record = records[0]
            tat = record[1]
            if tat < now:
                tat = now
            if tat + self.interval - now > self.period * (1 + SLACK):
                return [0.0, now, tat]
            tat += self.interval
            record[0] = tat
            record[1] = tat
            return [1.0, now, tat]
        intervals = self.intervals
        periods = self.periods
        admitted = True
        tats: list[float] = []
        for index, record in enumerate(records):
            tat = record[1]
            if tat < now:
                tat = now
            tats.append(tat)
            if tat + intervals[index] - now > periods[index] * (1 + SLACK):
                admitted = False
        result = [1.0 if admitted else 0.0, now]
        for index, record in enumerate(records):
            tat = tats[index]
            if admitted:
                tat += intervals[index]
                record[0] = tat
                record[1] = tat
            result.append(tat)
        return result


def remaining(limit: int, period: float, used: float) -> int:
    """Requests a key may still make at once, ``used`` seconds of its bucket being full."""
    interval = period / limit
    left = math.floor((period - used) / interval + SLACK)
    return 0 if left < 0 else limit if left > limit else left


def next_unit(limit: int, period: float, used: float, left: int) -> int:
    """Whole seconds until the key may make one more request than ``left`` (0 when its
    bucket is empty): the ``t`` of the RateLimit field, and Retry-After when refused."""
    if left >= limit:
        return 0
    interval = period / limit
    wait = used - (period - (left + 1) * interval)
    return max(0, math.ceil(wait - SLACK))
