"""The native format's rate limits (``rate_limits``, gateway-wide and per route) and where
their counters live (``state``).

A limit is ``{name, limit, per, key}``: ``limit`` requests per ``per`` (a duration: ``1s``,
``10m``, ``1h``, ``1d``, or a number of seconds) for each distinct value of ``key``, a list
of parts: ``sub`` (the verified token's subject), ``claim:<name>``, ``ip`` (the client
address, through ``trusted_proxies`` only), ``header:<Name>`` and ``route``. The top-level
``rate_limits`` apply to every route that has none of its own (``rate_limits: []`` on a
route opts out); a route's own limits count per route.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import urlsplit

from propylon.config import durations, near_miss, values
from propylon.config.diagnostics import Diagnostics, Loc, describe, kind_of
from propylon.config.model import (
    FAILURE_POLICIES,
    STATE_BACKENDS,
    KeyPart,
    RateLimitPolicy,
    StateSpec,
)
from propylon.config.ocelot_rate_limit import UNREADABLE

MAX_LIMITS: Final = 8
LIMIT_KEYS: Final = ("name", "limit", "per", "key")
STATE_KEYS: Final = (
    "backend",
    "redis_url",
    "timeout",
    "on_failure",
    "key_prefix",
    "max_keys",
    "redis_max_connections",
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DEFAULT_STATE = StateSpec()


def read_rate_limits(
    raw: object, loc: Loc, diag: Diagnostics, *, per_route: bool
) -> tuple[RateLimitPolicy, ...] | None:
    """A ``rate_limits`` list; None when absent (a route then takes the defaults)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        diag.error(loc, f"must be a list of limits ({{limit, per, key}}), got {kind_of(raw)}")
        return ()
    if len(raw) > MAX_LIMITS:
        diag.error(loc, f"at most {MAX_LIMITS} limits, got {len(raw)}")
        return ()
    policies: list[RateLimitPolicy] = []
    names: dict[str, int] = {}
    for index, item in enumerate(raw):
        at = (*loc, index)
        policy = _read_limit(item, at, diag, per_route=per_route)
        if policy is None:
            continue
        if policy.name in names:
            diag.error(
                (*at, "name"),
                f"{policy.name!r} is the name of {diag.path((*loc, names[policy.name]))} too: "
                "names tell the limits apart in RateLimit headers",
            )
            continue
        names[policy.name] = index
        policies.append(policy)
    return tuple(policies)


def _read_limit(
    item: object, at: Loc, diag: Diagnostics, *, per_route: bool
) -> RateLimitPolicy | None:
    if not isinstance(item, Mapping):
        diag.error(at, f"must be a mapping {{limit, per, key}}, got {kind_of(item)}")
        return None
    errors = len(diag.problems)
    for key in item:
        if key not in LIMIT_KEYS:
            guess = near_miss.closest(str(key), LIMIT_KEYS)
            hint = f"did you mean {guess}?" if guess else f"expected {', '.join(LIMIT_KEYS)}"
            diag.error((*at, str(key)), f"unknown key; {hint}")
    limit = item.get("limit")
    if "limit" not in item:
        diag.error((*at, "limit"), "required key is missing")
    elif isinstance(limit, bool) or not isinstance(limit, int):
        diag.error((*at, "limit"), f"must be an integer, got {describe(limit)}")
    elif limit < 1:
        diag.error((*at, "limit"), f"must be at least 1, got {limit}")
    per = item.get("per")
    period = 0.0
    if "per" not in item:
        diag.error((*at, "per"), "required key is missing (e.g. 1s, 1m, 1h, 1d)")
    else:
        try:
            period = durations.seconds(per)
        except ValueError as exc:
            diag.error((*at, "per"), str(exc))
        else:
            if period <= 0:
                diag.error((*at, "per"), f"must be longer than 0, got {describe(per)}")
    key = _read_key(item.get("key", ["ip"]), (*at, "key"), diag)
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
        diag.error(
            (*at, "name"),
            f"must be 1-64 letters, digits, '.', '_' or '-', got {describe(name)}",
        )
    if len(diag.problems) > errors or not isinstance(limit, int) or key is None:
        return None
    if name is None:
        shown = per if isinstance(per, str) else f"{durations.dotnet_number(period)}s"
        name = f"{limit}-per-{shown.strip()}"
    has_route = any(part.kind == "route" for part in key)
    return RateLimitPolicy(
        name=str(name),
        limit=limit,
        period=period,
        key=key,
        source=diag.path(at),
        per_route=per_route or has_route,
    )


def _read_key(raw: object, at: Loc, diag: Diagnostics) -> tuple[KeyPart, ...] | None:
    parts_raw: Sequence[object] = (
        [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    )
    if not isinstance(raw, str | list) or not parts_raw:
        diag.error(at, "must be a list of key parts: sub, claim:<name>, ip, header:<Name>, route")
        return None
    parts: list[KeyPart] = []
    for index, text in enumerate(parts_raw):
        where = at if isinstance(raw, str) else (*at, index)
        part = _key_part(text, where, diag)
        if part is None:
            continue
        if part in parts:
            diag.error(where, f"{part} is listed twice")
            continue
        parts.append(part)
    if len(parts) != len(parts_raw):
        return None
    return tuple(parts)


def _key_part(text: object, at: Loc, diag: Diagnostics) -> KeyPart | None:
    if not isinstance(text, str):
        diag.error(at, f"must be a string such as sub or header:X-Api-Key, got {describe(text)}")
        return None
    kind, _, name = text.partition(":")
    kind = kind.strip()
    name = name.strip()
    if kind in ("sub", "ip", "route") and not name:
        return KeyPart(kind)
    if kind == "claim" and name:
        return KeyPart("claim", name)
    if kind == "header" and name:
        try:
            values.header_name(name)
        except ValueError as exc:
            diag.error(at, str(exc))
            return None
        if name.lower() in UNREADABLE or "_" in name:
            diag.error(
                at,
                f"{name!r} never reaches the rate limiter (the gateway strips or owns it, or "
                "drops names with '_'): every request would share one counter",
            )
            return None
        return KeyPart("header", name.lower())
    diag.error(
        at,
        f"unknown key part {text!r}: use sub, claim:<name>, ip, header:<Name> or route",
    )
    return None


def read_state(raw: object, diag: Diagnostics, env: Mapping[str, str]) -> StateSpec:
    """The ``state`` section; ``PROPYLON_REDIS_URL`` and ``PROPYLON_REDIS_ON_FAILURE``
    fill what the file leaves out (so Ocelot and seed files can use Redis too)."""
    given: Mapping[object, object] = {}
    if raw is not None:
        if not isinstance(raw, Mapping):
            diag.error(("state",), f"must be a mapping, got {kind_of(raw)}")
        else:
            given = raw
            for key in raw:
                if key not in STATE_KEYS:
                    guess = near_miss.closest(str(key), STATE_KEYS)
                    hint = (
                        f"did you mean {guess}?"
                        if guess
                        else f"expected one of {', '.join(STATE_KEYS)}"
                    )
                    diag.error(("state", str(key)), f"unknown key; {hint}")
    return state_from(given, diag, env, ("state",))


def state_from(
    given: Mapping[object, object], diag: Diagnostics, env: Mapping[str, str], at: Loc
) -> StateSpec:
    spec = _DEFAULT_STATE
    backend = _choice(given, "backend", STATE_BACKENDS, spec.backend, at, diag)
    failure = given.get("on_failure", env.get("PROPYLON_REDIS_ON_FAILURE") or spec.on_failure)
    if failure not in FAILURE_POLICIES:
        where = (*at, "on_failure") if "on_failure" in given else ()
        origin = "" if "on_failure" in given else "PROPYLON_REDIS_ON_FAILURE: "
        diag.error(where, f"{origin}must be open or closed, got {describe(failure)}")
        failure = spec.on_failure
    url = given.get("redis_url", env.get("PROPYLON_REDIS_URL") or None)
    url_failed = False
    if url is not None:
        where = (*at, "redis_url") if "redis_url" in given else ()
        origin = "" if "redis_url" in given else "PROPYLON_REDIS_URL: "
        problem = _redis_url_problem(url)
        if problem is not None:
            diag.error(where, origin + problem)
            url, url_failed = None, True
        elif importlib.util.find_spec("redis") is None:
            diag.error(
                where,
                origin + "Redis needs the optional dependency: pip install 'propylon[redis]'",
            )
    if backend == "redis" and url is None and not url_failed:
        diag.error((*at, "backend"), "redis needs state.redis_url (or PROPYLON_REDIS_URL)")
    timeout = _number(given, "timeout", spec.timeout, at, diag, minimum=0.001)
    max_keys = _integer(given, "max_keys", spec.max_keys, at, diag, minimum=64)
    connections = _integer(
        given, "redis_max_connections", spec.redis_max_connections, at, diag, minimum=1
    )
    prefix = given.get("key_prefix", spec.key_prefix)
    if not isinstance(prefix, str) or len(prefix) > 64:
        diag.error(
            (*at, "key_prefix"),
            f"must be a string of at most 64 characters, got {describe(prefix)}",
        )
        prefix = spec.key_prefix
    return StateSpec(
        backend=backend,
        redis_url=url if isinstance(url, str) else None,
        timeout=timeout,
        on_failure=str(failure),
        key_prefix=prefix,
        max_keys=max_keys,
        redis_max_connections=connections,
    )


def _redis_url_problem(url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return f"must be a redis:// URL, got {describe(url)}"
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        return "must be a redis://, rediss:// or unix:// URL"
    if parts.scheme != "unix" and not parts.hostname:
        return "must name a host: redis://host:6379/0"
    return None


def _choice(
    given: Mapping[object, object],
    key: str,
    allowed: tuple[str, ...],
    default: str,
    at: Loc,
    diag: Diagnostics,
) -> str:
    value = given.get(key, default)
    if value not in allowed:
        diag.error((*at, key), f"must be one of {', '.join(allowed)}, got {describe(value)}")
        return default
    return str(value)


def _number(
    given: Mapping[object, object],
    key: str,
    default: float,
    at: Loc,
    diag: Diagnostics,
    *,
    minimum: float,
) -> float:
    value = given.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value < 1e9:
        diag.error((*at, key), f"must be a number of seconds >= {minimum}, got {describe(value)}")
        return default
    return float(value)


def _integer(
    given: Mapping[object, object],
    key: str,
    default: int,
    at: Loc,
    diag: Diagnostics,
    *,
    minimum: int,
) -> int:
    value = given.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        diag.error((*at, key), f"must be an integer >= {minimum}, got {describe(value)}")
        return default
    return value
