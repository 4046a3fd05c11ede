"""Ocelot's rate-limiting algorithm, as Ocelot 25 runs it (``RateLimiting.ProcessRequest``).

A counter per client and route: the first request opens a window (count 1) at its own
moment; each request adds one; the request that takes the count past ``limit`` is refused
and its moment recorded as "exceeded at". Refusals go on until the window ends or, with a
``Wait``, until ``exceeded at + Wait``, whichever comes later; then the next request opens a
new window as its first. A refused request still counts (so the ``Retry-After`` of a client
that keeps trying does not move, but its count does). Comparisons keep Ocelot's edges: a
window covers ``start + period`` itself, a wait ends strictly after ``exceeded + wait``.
"""

from __future__ import annotations

from typing import Final

from propylon.state.store import Transition

SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local wait = tonumber(ARGV[3])
local started, total, exceeded = now, 1, 0
local raw = redis.call('GET', KEYS[1])
if raw then
  local s, c, e = string.match(raw, '^([^ ]+) ([^ ]+) ([^ ]+)$')
  started, total, exceeded = tonumber(s), tonumber(c) + 1, tonumber(e)
  if total > limit and exceeded == 0 then exceeded = now end
  local in_window = started + period >= now
  local in_wait = exceeded ~= 0 and exceeded + wait >= now
  if not (in_window or in_wait) then started, total, exceeded = now, 1, 0 end
end
local function retry_after()
  if total <= limit or exceeded == 0 then return 0 end
  if wait == 0 and started + period > now then return started + period - now end
  if exceeded + wait > now then return exceeded + wait - now end
  return -1
end
if total > limit and retry_after() < 0 then started, total, exceeded = now, 1, 0 end
local ttl = math.ceil((period + wait + 1) * 1000)
redis.call('SET', KEYS[1], string.format('%.6f %d %.6f', started, total, exceeded), 'PX', ttl)
return {tostring(total), string.format('%.6f', started), string.format('%.6f', retry_after()),
        string.format('%.6f', now)}
"""


class FixedWindow(Transition):
    """One Ocelot rule. Record: ``[expires, started_at, total, exceeded_at (0: not)]``.
    Result: ``[total, started_at, retry_after, now]``: refused when ``total > limit``."""

    __slots__ = ("args", "limit", "period", "wait")

    script = SCRIPT

    def __init__(self, limit: int, period: float, wait: float) -> None:
        self.limit = limit
        self.period = period
        self.wait = wait
        self.args = [str(limit), repr(period), repr(wait)]

    def script_args(self) -> list[str]:
        return self.args

    def apply(self, records: list[list[float]], now: float) -> list[float]:
        record = records[0]
        limit = self.limit
        period = self.period
        wait = self.wait
        if record[0] > now:  # Ocelot's Count(): an entry exists
            started = record[1]
            total = record[2] + 1.0
            exceeded = record[3]
            if total > limit and exceeded == 0.0:
                exceeded = now
            in_window = started + period >= now
            in_wait = exceeded != 0.0 and exceeded + wait >= now
            if not (in_window or in_wait):
                started, total, exceeded = now, 1.0, 0.0
        else:
            started, total, exceeded = now, 1.0, 0.0
        retry = self.retry_after(started, total, exceeded, now)
        if retry < 0:  # the wait (or window) is over: this request opens a new window
            started, total, exceeded = now, 1.0, 0.0
            retry = 0.0
        # Ocelot keeps a counter for period + wait + 1 s after its last request.
        record[0] = now + period + wait + 1.0
        record[1] = started
        record[2] = total
        record[3] = exceeded
        return [total, started, retry, now]

    def retry_after(self, started: float, total: float, exceeded: float, now: float) -> float:
        """Ocelot's ``RetryAfter``: seconds until a refused client may retry; 0 when the
        request is admitted, -1 when the refusal is over."""
        if total <= self.limit or exceeded == 0.0:
            return 0.0
        if self.wait == 0.0 and started + self.period > now:
            return started + self.period - now
        if exceeded + self.wait > now:
            return exceeded + self.wait - now
        return -1.0
