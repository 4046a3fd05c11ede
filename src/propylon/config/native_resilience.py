"""The native format's balancer, ejection, health-check and circuit-breaker settings.

```yaml
downstream:
  hosts: [a:8000, b:8000]
  balancer: least_connection                       # or an object with `type`:
  # {type: sticky_cookie, cookie: SESSION, expiry: 20m}
  # {type: hash, header: X-Tenant}  (or cookie: NAME, or claim: NAME)
  # {type: weighted_round_robin, weights: [3, 1]}
  ejection: {consecutive_failures: 5, base: 5s, max: 5m}   # false: never eject
  health_check: {path: /health, interval: 5s, timeout: 2s, healthy_threshold: 1,
                 unhealthy_threshold: 2}
circuit_breaker: {minimum_throughput: 5, break_duration: 10s}     # count mode
# {failure_ratio: 0.5, minimum_throughput: 20, sampling_duration: 10s, break_duration: 5s}
retries: {attempts: 3, methods: [GET, PUT], per_try_timeout: 2s, backoff: 25ms,
          backoff_max: 250ms, replay_body_bytes: 65536,
          budget: {ratio: 0.2, min_per_second: 3}}                # false: never retry
```

Every problem names its key path; durations are ``1s``-style text or seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from propylon.config import durations, values
from propylon.config.diagnostics import Diagnostics, Loc, kind_of
from propylon.config.model import (
    BALANCERS,
    NO_RETRIES,
    RETRY_METHODS,
    BalancerSpec,
    BreakerSpec,
    EjectionSpec,
    HealthCheckSpec,
    RetrySpec,
)

T = TypeVar("T")
NATIVE_MINIMUM_THROUGHPUT = 5


def _object(raw: object, at: Loc, diag: Diagnostics, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        diag.error(at, f"must be an object, got {kind_of(raw)}")
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in allowed:
            diag.error((*at, str(key)), f"unknown key; expected one of {', '.join(allowed)}")
        else:
            out[key] = value
    return out


def _value(
    fields: Mapping[str, Any],
    name: str,
    at: Loc,
    diag: Diagnostics,
    read: Callable[[object], T],
    default: T,
) -> T:
    if name not in fields:
        return default
    try:
        return read(fields[name])
    except ValueError as exc:
        diag.error((*at, name), str(exc))
        return default


def _count(minimum: int) -> Callable[[object], int]:
    def read(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, got {kind_of(value)}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return read


def _positive_seconds(value: object) -> float:
    seconds = durations.seconds(value)
    if seconds <= 0:
        raise ValueError(f"must be more than 0, got {value!r}")
    return seconds


def _non_negative_seconds(value: object) -> float:
    return durations.seconds(value)


def _share(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number in [0, 1], got {kind_of(value)}")
    if not 0 <= value <= 1:
        raise ValueError(f"must be in [0, 1], got {value}")
    return float(value)


def _rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of retries per second, got {kind_of(value)}")
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be 0 or more, got {value}")
    return float(value)


def _ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number in (0, 1], got {kind_of(value)}")
    if not 0 < value <= 1:
        raise ValueError(f"must be in (0, 1], got {value}")
    return float(value)


def _path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"must be a path starting with /, got {value!r}")
    if any(c in value for c in " \r\n\t#"):
        raise ValueError(f"must be a plain path (no spaces or #), got {value!r}")
    return value


def balancer(raw: object, at: Loc, hosts: int, diag: Diagnostics) -> BalancerSpec:
    if raw is None:
        return BalancerSpec()
    if isinstance(raw, str):
        raw = {"type": raw}
    fields = _object(raw, at, diag, ("type", "cookie", "expiry", "header", "claim", "weights"))
    kind = fields.get("type")
    if kind not in BALANCERS:
        diag.error((*at, "type"), f"must be one of {', '.join(BALANCERS)}, got {kind!r}")
        return BalancerSpec()
    if kind == "sticky_cookie":
        cookie = fields.get("cookie")
        if not isinstance(cookie, str) or not cookie.strip():
            diag.error((*at, "cookie"), "sticky_cookie needs the cookie's name")
            cookie = ""
        expiry = _value(fields, "expiry", at, diag, durations.seconds, 1200.0)
        return BalancerSpec(kind=kind, key=cookie.strip(), expiry=expiry)
    if kind == "hash":
        given = [name for name in ("header", "cookie", "claim") if name in fields]
        if len(given) != 1:
            diag.error(at, "hash needs exactly one of header, cookie or claim (the value hashed)")
            return BalancerSpec()
        source = given[0]
        name = fields[source]
        if not isinstance(name, str) or not name.strip():
            diag.error((*at, source), f"must be a {source} name, got {name!r}")
            return BalancerSpec()
        return BalancerSpec(kind=kind, key=name.strip(), hash_on=source)
    if kind == "weighted_round_robin":
        weights = fields.get("weights")
        if (
            not isinstance(weights, list)
            or len(weights) != hosts
            or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in weights)
        ):
            diag.error(
                (*at, "weights"),
                f"must list one positive whole weight per host ({hosts}), got {weights!r}",
            )
            return BalancerSpec()
        return BalancerSpec(kind=kind, weights=tuple(weights))
    for extra in ("cookie", "expiry", "header", "claim", "weights"):
        if extra in fields:
            diag.error((*at, extra), f"has no meaning for {kind}")
    return BalancerSpec(kind=kind)


def ejection(raw: object, at: Loc, diag: Diagnostics) -> EjectionSpec | None:
    if raw is False:
        return None
    if raw is None or raw is True:
        return EjectionSpec()
    fields = _object(raw, at, diag, ("consecutive_failures", "base", "max"))
    default = EjectionSpec()
    spec = EjectionSpec(
        consecutive_failures=_value(
            fields, "consecutive_failures", at, diag, _count(1), default.consecutive_failures
        ),
        base=_value(fields, "base", at, diag, _positive_seconds, default.base),
        max=_value(fields, "max", at, diag, _positive_seconds, default.max),
    )
    if spec.max < spec.base:
        diag.error((*at, "max"), f"must not be below base ({spec.base:g}s)")
    return spec


def health_check(raw: object, at: Loc, diag: Diagnostics) -> HealthCheckSpec | None:
    if raw is None:
        return None
    fields = _object(
        raw,
        at,
        diag,
        ("path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold"),
    )
    default = HealthCheckSpec()
    spec = HealthCheckSpec(
        path=_value(fields, "path", at, diag, _path, default.path),
        interval=_value(fields, "interval", at, diag, _positive_seconds, default.interval),
        timeout=_value(fields, "timeout", at, diag, _positive_seconds, default.timeout),
        healthy_threshold=_value(
            fields, "healthy_threshold", at, diag, _count(1), default.healthy_threshold
        ),
        unhealthy_threshold=_value(
            fields, "unhealthy_threshold", at, diag, _count(1), default.unhealthy_threshold
        ),
    )
    if spec.timeout > spec.interval:
        diag.error((*at, "timeout"), f"must not exceed the interval ({spec.interval:g}s)")
    return spec


def circuit_breaker(raw: object, at: Loc, diag: Diagnostics) -> BreakerSpec | None:
    if raw is None or raw is False:
        return None
    fields = _object(
        raw,
        at,
        diag,
        ("minimum_throughput", "break_duration", "failure_ratio", "sampling_duration"),
    )
    # Ocelot's default of 100 failures in a row suits its fleet-wide traffic; a native
    # route breaks after 5 unless it says otherwise.
    default = BreakerSpec(minimum_throughput=NATIVE_MINIMUM_THROUGHPUT)
    ratio = _value(fields, "failure_ratio", at, diag, _ratio, -1.0)
    if "sampling_duration" in fields and ratio < 0:
        diag.error((*at, "sampling_duration"), "only counts with failure_ratio (ratio mode)")
    return BreakerSpec(
        minimum_throughput=_value(
            fields, "minimum_throughput", at, diag, _count(1), default.minimum_throughput
        ),
        break_duration=_value(
            fields, "break_duration", at, diag, _positive_seconds, default.break_duration
        ),
        failure_ratio=ratio if ratio > 0 else None,
        sampling_duration=_value(
            fields, "sampling_duration", at, diag, _positive_seconds, default.sampling_duration
        ),
    )


RETRY_KEYS = (
    "attempts",
    "methods",
    "per_try_timeout",
    "backoff",
    "backoff_max",
    "replay_body_bytes",
    "budget",
)


def retries(raw: object, at: Loc, diag: Diagnostics, default: RetrySpec) -> RetrySpec:
    """A ``retries`` block (a route's, or the top level's ``default`` for every route).
    ``false`` never retries; a block starts from propylon's defaults, not the top level's:
    what a route says is all of its policy."""
    if raw is None:
        return default
    if raw is False:
        return NO_RETRIES
    if raw is True:
        raw = {}
    fields = _object(raw, at, diag, RETRY_KEYS)
    base = RetrySpec()
    methods = frozenset(sorted(RETRY_METHODS))
    if "methods" in fields:
        methods = _methods(fields["methods"], (*at, "methods"), diag)
    per_try = _value(fields, "per_try_timeout", at, diag, _positive_seconds, 0.0)
    backoff = _value(fields, "backoff", at, diag, _non_negative_seconds, base.backoff)
    backoff_max = _value(
        fields, "backoff_max", at, diag, _non_negative_seconds, max(base.backoff_max, backoff)
    )
    if backoff_max < backoff:
        diag.error((*at, "backoff_max"), f"must not be below backoff ({backoff:g}s)")
    ratio, floor = base.budget_ratio, base.budget_floor
    if "budget" in fields:
        budget = _object(fields["budget"], (*at, "budget"), diag, ("ratio", "min_per_second"))
        ratio = _value(budget, "ratio", (*at, "budget"), diag, _share, ratio)
        floor = _value(budget, "min_per_second", (*at, "budget"), diag, _rate, floor)
    return RetrySpec(
        attempts=_value(fields, "attempts", at, diag, _count(1), base.attempts),
        methods=methods,
        per_try_timeout=per_try or None,
        backoff=backoff,
        backoff_max=backoff_max,
        replay_body_bytes=_value(
            fields, "replay_body_bytes", at, diag, _count(0), base.replay_body_bytes
        ),
        budget_ratio=ratio,
        budget_floor=floor,
    )


def _methods(raw: object, at: Loc, diag: Diagnostics) -> frozenset[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        diag.error(at, f"must be a list of methods, got {kind_of(raw)}")
        return frozenset()
    out: set[str] = set()
    for i, name in enumerate(raw):
        if not isinstance(name, str):
            diag.error((*at, i), f"must be a method name, got {kind_of(name)}")
            continue
        try:
            method = values.http_method(name)
        except ValueError as exc:
            diag.error((*at, i), str(exc))
            continue
        if method not in RETRY_METHODS:
            # Allowed: the operator knows the service (an idempotency key, say); said aloud.
            diag.warning(
                (*at, i),
                f"{method} is not idempotent: a retry after a failure the upstream may have "
                "seen can apply it twice",
            )
        out.add(method)
    return frozenset(out)
