"""Login and registration throttling, atomic, in memory or (IDENTITY_REDIS_URL) in Redis.

A login attempt is admitted or refused *before* its password is checked, and admitting it
counts it, in one atomic step: concurrent guesses cannot all pass a check that none of them
has yet been counted against (20 concurrent wrong guesses were once all checked against a
limit of 5). A success then forgets its own (username, client) record and gives back what it
took from the others.

Three records see each attempt, each with a number of free attempts and, past that, a delay
before the next one that doubles each time from `base_delay` up to its `max_delay`:

- (username, client): one source guessing one account; long delays.
- client: one source trying many usernames (one guess each on 30 names was never slowed);
  long delays.
- username, across clients: many sources guessing one account. Its delay stays short
  (a few seconds), so it slows a distributed guesser but hands nobody a switch that locks
  the rightful owner out (5 bad tries by anyone used to block the right password for 300 s).

Records are forgotten `memory` seconds after their last attempt (plus the delay in force).
Registration is a fixed window per client. Keys are the lower-cased username as typed
(known or not, so the throttle reveals nothing) and the client address, hashed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from servicekit import ResponseCode, ServiceError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("identity.throttle")


@dataclass(frozen=True, slots=True)
class Rule:
    free: int  # attempts admitted back to back before any delay
    max_delay: float  # seconds: the doubling stops here


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    pair: Rule
    client: Rule
    user: Rule
    base_delay: float
    memory: float

    @property
    def rules(self) -> tuple[Rule, Rule, Rule]:
        return (self.pair, self.client, self.user)


def delay_after(count: int, rule: Rule, base: float) -> float:
    """The wait before the next attempt once `count` attempts are on the record."""
    if count < rule.free:
        return 0.0
    exponent = min(count - rule.free, 62)  # 2**62 seconds is "forever" already
    return float(min(base * 2.0**exponent, rule.max_delay))


@dataclass(frozen=True, slots=True)
class Attempt:
    """An admitted login attempt: the records it was counted on (pair, client, user)."""

    keys: tuple[str, str, str]


def _digest(*parts: str) -> str:
    joined = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()[:32]


def login_keys(username: str, client: str) -> tuple[str, str, str]:
    user = username.lower()
    return (
        f"login:pair:{_digest(user, client)}",
        f"login:client:{_digest(client)}",
        f"login:user:{_digest(user)}",
    )


def registration_key(client: str) -> str:
    return f"register:client:{_digest(client)}"


class ThrottleUnavailable(ServiceError):
    def __init__(self) -> None:
        super().__init__(503, ResponseCode.NotReady, "The service's throttle store is unavailable.")


class ThrottleStore(Protocol):
    async def admit(self, keys: Sequence[str], policy: LoginPolicy, now: float) -> float:
        """0 and the attempt counted on every key, or the seconds to wait and nothing done."""

    async def release(self, keys: Sequence[str], policy: LoginPolicy, forget_first: bool) -> None:
        """Give back one attempt on each key (dropping the first key's record if asked)."""

    async def count(self, key: str, window: float, now: float) -> tuple[int, float]:
        """Add one to a fixed-window counter: the count so far and the seconds left."""

    async def ping(self) -> str | None:
        """None when usable, else why not."""

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Record:
    count: int = 0
    not_before: float = 0.0
    expires: float = 0.0


class MemoryStore:
    """One process's records. Every method runs to completion without awaiting, so on the
    event loop each is atomic. Memory is bounded: past `max_tracked` records the expired
    ones go, then the oldest."""

    def __init__(self, max_tracked: int = 100_000) -> None:
        self.max_tracked = max_tracked
        self._records: dict[str, _Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def _live(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and record.expires <= now:
            del self._records[key]
            return None
        return record

    def _make_room(self, now: float) -> None:
        if len(self._records) < self.max_tracked:
            return
        for key in [k for k, r in self._records.items() if r.expires <= now]:
            del self._records[key]
        while len(self._records) >= self.max_tracked:
            del self._records[next(iter(self._records))]

    async def admit(self, keys: Sequence[str], policy: LoginPolicy, now: float) -> float:
        records = [self._live(key, now) for key in keys]
        wait = max((r.not_before - now for r in records if r is not None), default=0.0)
        if wait > 0:
            return wait
        for key, record, rule in zip(keys, records, policy.rules, strict=True):
            if record is None:
                self._make_room(now)
                record = self._records[key] = _Record()
            record.count += 1
            delay = delay_after(record.count, rule, policy.base_delay)
            record.not_before = now + delay
            record.expires = now + policy.memory + delay
        return 0.0

    async def release(self, keys: Sequence[str], policy: LoginPolicy, forget_first: bool) -> None:
        for index, (key, rule) in enumerate(zip(keys, policy.rules, strict=True)):
            record = self._records.get(key)
            if record is None:
                continue
            if index == 0 and forget_first:
                del self._records[key]
                continue
            record.count -= 1
            if record.count <= 0:
                del self._records[key]
            elif record.count < rule.free:
                record.not_before = 0.0

    async def count(self, key: str, window: float, now: float) -> tuple[int, float]:
        record = self._live(key, now)
        if record is None:
            self._make_room(now)
            record = self._records[key] = _Record(expires=now + window)
        record.count += 1
        return record.count, record.expires - now

    async def ping(self) -> str | None:
        return None

    async def close(self) -> None:
        return None


# KEYS: the records; ARGV: now (unused: the script reads Redis TIME), base, memory, then
# free and max_delay per key.
# Returns "0" (admitted, counted) or the seconds to wait, as a string: Lua numbers come
# back from Redis truncated to integers.
_ADMIT = """
-- Redis's own clock, not the caller's: concurrent logins read their clocks before their
-- turn here, and a caller whose clock reading is older would otherwise be told to wait
-- longer than the delay (and replicas with skewed clocks would disagree).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local base = tonumber(ARGV[2])
local memory = tonumber(ARGV[3])
local wait = 0
for i, key in ipairs(KEYS) do
  local not_before = tonumber(redis.call('HGET', key, 'not_before') or '0')
  if not_before - now > wait then wait = not_before - now end
end
if wait > 0 then return string.format('%.6f', wait) end
for i, key in ipairs(KEYS) do
  local free = tonumber(ARGV[2 + 2 * i])
  local max_delay = tonumber(ARGV[3 + 2 * i])
  local count = redis.call('HINCRBY', key, 'count', 1)
  local delay = 0
  if count >= free then
    delay = math.min(base * 2 ^ math.min(count - free, 62), max_delay)
  end
  -- '%.6f', not tostring: its 14 digits would round a zero delay up into the future.
  local not_before = '0'
  if delay > 0 then not_before = string.format('%.6f', now + delay) end
  redis.call('HSET', key, 'not_before', not_before)
  redis.call('PEXPIRE', key, math.ceil((memory + delay) * 1000))
end
return '0'
"""

# KEYS: the records; ARGV: 1 to drop the first record, then free per key.
_RELEASE = """
for i, key in ipairs(KEYS) do
  if i == 1 and ARGV[1] == '1' then
    redis.call('DEL', key)
  elseif redis.call('EXISTS', key) == 1 then
    local count = redis.call('HINCRBY', key, 'count', -1)
    if count <= 0 then
      redis.call('DEL', key)
    elseif count < tonumber(ARGV[1 + i]) then
      redis.call('HSET', key, 'not_before', '0')
    end
  end
end
return 1
"""

# KEYS[1]: the counter; ARGV[1]: the window in milliseconds. Returns {count, ms left}.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


class RedisStore:
    """Records shared by every replica that uses the same Redis and prefix. Each operation
    is one Lua script (EVALSHA), so it is atomic across replicas too."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis  # an optional extra: imported only when used

        self.prefix = prefix
        self.client: Redis = Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True
        )
        self._admit = self.client.register_script(_ADMIT)
        self._release = self.client.register_script(_RELEASE)
        self._count = self.client.register_script(_COUNT)

    def _keys(self, keys: Sequence[str]) -> list[str]:
        return [self.prefix + key for key in keys]

    async def _run(self, script: Any, keys: Sequence[str], args: Sequence[object]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await script(keys=self._keys(keys), args=list(args))
        except (RedisError, OSError) as exc:
            log.error("throttle store (Redis) failed: %s", exc)
            raise ThrottleUnavailable() from None

    async def admit(self, keys: Sequence[str], policy: LoginPolicy, now: float) -> float:
        args: list[object] = [repr(now), repr(policy.base_delay), repr(policy.memory)]
        for rule in policy.rules:
            args += [rule.free, repr(float(rule.max_delay))]
        return float(await self._run(self._admit, keys, args))

    async def release(self, keys: Sequence[str], policy: LoginPolicy, forget_first: bool) -> None:
        await self._run(
            self._release, keys, ["1" if forget_first else "0", *(r.free for r in policy.rules)]
        )

    async def count(self, key: str, window: float, now: float) -> tuple[int, float]:
        count, left = await self._run(self._count, [key], [math.ceil(window * 1000)])
        return int(count), int(left) / 1000

    async def ping(self) -> str | None:
        from redis.exceptions import RedisError

        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            log.warning("readiness: Redis does not answer: %s", exc)
            return "the throttle store (Redis) is unavailable"
        return None

    async def close(self) -> None:
        await self.client.aclose()


def _retry_after(wait: float) -> dict[str, str]:
    # Whole seconds, rounded up, but not for the microsecond that '%.6f' in the Redis
    # record can add: a 60 s delay must not read as 61.
    return {"Retry-After": str(max(1, math.ceil(wait - 0.001)))}


class Throttle:
    def __init__(
        self,
        store: ThrottleStore,
        policy: LoginPolicy,
        register_limit: int,
        register_window: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Wall-clock time: replicas sharing Redis must agree on what "now" is.
        self.store = store
        self.policy = policy
        self.register_limit = register_limit
        self.register_window = register_window
        self._clock = clock

    async def admit_login(self, username: str, client: str) -> Attempt:
        """Count an attempt, or refuse it with 429 LoginThrottled and a Retry-After."""
        keys = login_keys(username, client)
        wait = await self.store.admit(keys, self.policy, self._clock())
        if wait > 0:
            raise ServiceError(
                429,
                ResponseCode.LoginThrottled,
                "Too many failed logins; try again later.",
                headers=_retry_after(wait),
            )
        return Attempt(keys)

    async def succeeded(self, attempt: Attempt) -> None:
        await self.store.release(attempt.keys, self.policy, forget_first=True)

    async def not_tried(self, attempt: Attempt) -> None:
        """The password was never checked (busy, failed): the attempt is given back."""
        await self.store.release(attempt.keys, self.policy, forget_first=False)

    async def admit_registration(self, client: str) -> None:
        count, left = await self.store.count(
            registration_key(client), self.register_window, self._clock()
        )
        if count > self.register_limit:
            raise ServiceError(
                429,
                ResponseCode.RegistrationThrottled,
                "Too many registrations from this address; try again later.",
                headers=_retry_after(left),
            )
