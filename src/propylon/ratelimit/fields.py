"""Response header fields of rate limiting: Ocelot's ``X-RateLimit-*`` and the IETF draft's
``RateLimit-Policy`` / ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-11)."""

from __future__ import annotations

from datetime import UTC, datetime

from propylon.config.model import RateLimitPolicy


def ocelot_reset(moment: float) -> str:
    """A moment as .NET's round-trip format ``o`` writes a UTC time, which Ocelot uses for
    ``X-RateLimit-Reset``: ``2025-09-11T03:04:05.0060070Z`` (seven fractional digits)."""
    when = datetime.fromtimestamp(moment, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0Z"


def policy_item(policy: RateLimitPolicy) -> str:
    """One quota policy of ``RateLimit-Policy``: ``"name";q=<limit>;w=<seconds>``. The
    draft's window is whole seconds; a window that is not is left out (``w`` is optional)
    rather than misstated."""
    item = f'"{policy.name}";q={policy.limit}'
    if policy.period >= 1 and float(policy.period).is_integer():
        item += f";w={int(policy.period)}"
    return item


def policy_line(policies: tuple[RateLimitPolicy, ...]) -> bytes:
    """The route's ``RateLimit-Policy`` line, the same on every response."""
    return ("RateLimit-Policy: " + ", ".join(policy_item(p) for p in policies)).encode()


def limit_item(name: str, remaining: int, reset: int) -> str:
    """One service limit of ``RateLimit``: ``"name";r=<remaining>;t=<seconds>``."""
    return f'"{name}";r={remaining};t={reset}'


def limit_item_prefix(name: str) -> bytes:
    """``"name";r=``: what ``limit_item`` writes before the numbers, built once per limit."""
    return f'"{name}";r='.encode()
