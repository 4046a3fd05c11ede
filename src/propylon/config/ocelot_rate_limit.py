"""Ocelot's ``RateLimitOptions``: a route's own object merged with the global one.

The merge is Ocelot 25's (``RateLimitOptionsCreator``): a global object without
``RouteKeys`` (or with an empty list) applies to every route, with ``RouteKeys`` only to the
routes whose ``Key`` is listed. ``EnableRateLimiting: false`` on either side turns limiting
off; a route without options takes the global object; a route with options takes each
missing value from the global object. Old and new key names are separate keys, and where
both are given the old one wins, as in Ocelot (``HttpStatusCode`` over ``StatusCode``,
``QuotaExceededMessage`` over ``QuotaMessage``, ``RateLimitCounterPrefix`` over
``KeyPrefix``, ``DisableRateLimitHeaders`` over ``EnableHeaders``, ``PeriodTimespan``
seconds over ``Wait``), even when the old name comes from the global object.

What Ocelot refuses at start-up is an error here too (a route's own ``Limit`` of zero or
less, a route's options without a valid ``Period``); what Ocelot would only fail on at run
time (a ``Period`` or ``Wait`` it cannot parse, a ``QuotaMessage`` that is not a valid
format string, a ``ClientIdHeader`` the gateway never lets through) is an error as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from propylon.config import dotnet_format, durations, values
from propylon.config.diagnostics import Diagnostics, Loc
from propylon.config.model import OcelotRateLimit
from propylon.config.ocelot_models import GlobalRateLimitModel, RateLimitModel

DEFAULT = OcelotRateLimit(limit=0, period="1s", period_seconds=1.0)
GLOBAL: Loc = ("GlobalConfiguration", "RateLimitOptions")
# The gateway strips or acts on these before any stage can read them, so a client id header
# of one of these names would never be found: every request would be refused with 503.
UNREADABLE = frozenset(
    {
        "authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "upgrade",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-real-ip",
        "forwarded",
        "user",
    }
)
OLD_NAMES = (
    ("HttpStatusCode", "StatusCode"),
    ("QuotaExceededMessage", "QuotaMessage"),
    ("RateLimitCounterPrefix", "KeyPrefix"),
    ("DisableRateLimitHeaders", "EnableHeaders"),
    ("PeriodTimespan", "Wait"),
)


@dataclass(frozen=True, slots=True)
class Given:
    """A value and where it was written."""

    value: object
    loc: Loc


def _pick(*candidates: tuple[object, Loc]) -> Given | None:
    for value, loc in candidates:
        if value is not None and value != "":
            return Given(value, loc)
    return None


def effective(
    route: RateLimitModel | None,
    route_key: str | None,
    loc: Loc,
    glob: GlobalRateLimitModel | None,
    diag: Diagnostics,
) -> OcelotRateLimit | None:
    """The route's rate limit as Ocelot 25 would apply it, or None when it has none."""
    at = (*loc, "RateLimitOptions")
    if route is not None and route.EnableRateLimiting is not False:
        _check_route_object(route, at, diag)
    keys = glob.RouteKeys if glob is not None else None
    applies = glob is not None and (not keys or (route_key is not None and route_key in keys))
    if route is not None and route.EnableRateLimiting is False:
        return None
    if applies and glob is not None and glob.EnableRateLimiting is False:
        return None
    if route is None and not applies:
        return None
    mine = route if route is not None else RateLimitModel()
    other = glob if applies and glob is not None else RateLimitModel()

    def field(name: str) -> Given | None:
        return _pick((getattr(mine, name), at), (getattr(other, name), GLOBAL))

    spec = _build(field, mine, other, at, diag)
    if spec is not None and spec.limit == 0 and route is not None and mine.Limit is None:
        # Without a global Limit either, Ocelot's limit is 0: every request is refused.
        diag.warning(
            (*at, "Limit"),
            "not set, here or in GlobalConfiguration.RateLimitOptions: Ocelot 25 then uses "
            "0, and EVERY request on this route is refused (as here); set Limit",
        )
    return spec


def _check_route_object(route: RateLimitModel, at: Loc, diag: Diagnostics) -> None:
    """What Ocelot's start-up validation refuses in a route's own options."""
    if route.Limit is not None and route.Limit <= 0:
        diag.error(
            (*at, "Limit"),
            f"must be greater than 0, got {route.Limit} (Ocelot refuses to start with it)",
        )
    if not route.Period:
        diag.error(
            (*at, "Period"),
            "required when a route has RateLimitOptions (Ocelot refuses to start without "
            'it): e.g. "1s", "1m", "1h"',
        )
    else:
        try:
            _amount, with_unit = durations.parse(route.Period)
        except ValueError as exc:
            diag.error((*at, "Period"), str(exc))
        else:
            if not with_unit:
                diag.error(
                    (*at, "Period"),
                    f"needs a unit: ms, s, m, h or d (Ocelot refuses {route.Period!r} at start-up)",
                )
    for old, new in OLD_NAMES:
        if getattr(route, old) is not None and getattr(route, new) is not None:
            diag.warning(
                (*at, old),
                f"{old} (the old name) and {new} are both given: {old} wins, as in Ocelot",
            )


def _build(
    field: Callable[[str], Given | None],
    mine: RateLimitModel,
    other: RateLimitModel,
    at: Loc,
    diag: Diagnostics,
) -> OcelotRateLimit | None:
    errors = len([p for p in diag.problems if p.severity == "error"])
    limit_given = field("Limit")
    limit = int(limit_given.value) if limit_given is not None else 0  # type: ignore[call-overload]
    if limit_given is not None and limit < 0:
        diag.error((*limit_given.loc, "Limit"), f"must not be negative, got {limit}")
    period_given = field("Period")
    period = str(period_given.value) if period_given is not None else "1s"
    period_seconds = 1.0
    if period_given is not None:
        try:
            period_seconds, with_unit = durations.parse(period)
        except ValueError as exc:
            if period_given.loc == GLOBAL:  # a route's own Period is checked already
                diag.error((*GLOBAL, "Period"), str(exc))
        else:
            if not with_unit and period_given.loc == GLOBAL:
                diag.warning(
                    (*GLOBAL, "Period"),
                    f"{period!r} has no unit: read as milliseconds, as Ocelot reads it",
                )
    timespan = field("PeriodTimespan")
    wait_given = field("Wait")
    wait = "0ms"
    wait_seconds = 0.0
    if timespan is not None:
        amount = float(timespan.value)  # type: ignore[arg-type]
        if amount < 0:
            diag.error((*timespan.loc, "PeriodTimespan"), f"must not be negative, got {amount}")
        wait = durations.dotnet_number(amount) + "s"
        wait_seconds = abs(amount)
    elif wait_given is not None:
        wait = str(wait_given.value)
        try:
            wait_seconds, with_unit = durations.parse(wait)
        except ValueError as exc:
            diag.error((*wait_given.loc, "Wait"), str(exc))
        else:
            if not with_unit:
                diag.warning(
                    (*wait_given.loc, "Wait"),
                    f"{wait!r} has no unit: read as milliseconds, as Ocelot reads it",
                )
    status_given = _pick(
        (mine.HttpStatusCode, (*at, "HttpStatusCode")),
        (other.HttpStatusCode, (*GLOBAL, "HttpStatusCode")),
        (mine.StatusCode, (*at, "StatusCode")),
        (other.StatusCode, (*GLOBAL, "StatusCode")),
    )
    status = int(status_given.value) if status_given is not None else 429  # type: ignore[call-overload]
    if status_given is not None:
        if not 100 <= status <= 599:
            diag.error(status_given.loc, f"must be an HTTP status (100-599), got {status}")
        elif status < 400:
            diag.warning(
                status_given.loc,
                f"{status} tells clients their refused request succeeded; 429 is the usual",
            )
    message_given = _pick(
        (mine.QuotaExceededMessage, (*at, "QuotaExceededMessage")),
        (other.QuotaExceededMessage, (*GLOBAL, "QuotaExceededMessage")),
        (mine.QuotaMessage, (*at, "QuotaMessage")),
        (other.QuotaMessage, (*GLOBAL, "QuotaMessage")),
    )
    message = str(message_given.value) if message_given is not None else DEFAULT.quota_message
    if message_given is not None:
        try:
            dotnet_format.render(message, ("0", "1s"))
        except ValueError as exc:
            diag.error(message_given.loc, f"not a valid .NET format string: {exc}")
    prefix_given = _pick(
        (mine.RateLimitCounterPrefix, (*at, "RateLimitCounterPrefix")),
        (other.RateLimitCounterPrefix, (*GLOBAL, "RateLimitCounterPrefix")),
        (mine.KeyPrefix, (*at, "KeyPrefix")),
        (other.KeyPrefix, (*GLOBAL, "KeyPrefix")),
    )
    prefix = str(prefix_given.value) if prefix_given is not None else DEFAULT.key_prefix
    headers = _enable_headers(mine, other)
    header_given = field("ClientIdHeader")
    header = str(header_given.value) if header_given is not None else DEFAULT.client_id_header
    if header_given is not None:
        _check_header(header, (*header_given.loc, "ClientIdHeader"), diag)
    whitelist: list[str] = mine.ClientWhitelist or other.ClientWhitelist or []
    if len([p for p in diag.problems if p.severity == "error"]) > errors:
        return None
    return OcelotRateLimit(
        limit=abs(limit),
        period=period,
        period_seconds=period_seconds,
        wait=wait,
        wait_seconds=wait_seconds,
        client_id_header=header,
        client_whitelist=frozenset(whitelist),
        enable_headers=headers,
        status=status,
        quota_message=message,
        key_prefix=prefix,
    )


def _enable_headers(mine: RateLimitModel, other: RateLimitModel) -> bool:
    disabled = mine.DisableRateLimitHeaders
    if disabled is None:
        disabled = other.DisableRateLimitHeaders
    if disabled is not None:
        return not disabled
    enabled = mine.EnableHeaders
    if enabled is None:
        enabled = other.EnableHeaders
    return enabled if enabled is not None else True


def _check_header(name: str, loc: Loc, diag: Diagnostics) -> None:
    try:
        values.header_name(name)
    except ValueError as exc:
        diag.error(loc, str(exc))
        return
    if name.lower() in UNREADABLE:
        diag.error(
            loc,
            f"{name!r} never reaches the rate limiter (the gateway strips or owns it), so "
            "every request would be refused as an unidentified client",
        )
    elif "_" in name:
        diag.error(
            loc,
            f"{name!r}: headers with '_' are dropped before the rate limiter reads them "
            "(forwarding.allow_underscores), so every request would be refused",
        )


def trap_warning(limited: list[tuple[str, OcelotRateLimit]], diag: Diagnostics) -> None:
    """Ocelot 25's trap (reference s.6 item 1): a global ``RateLimitOptions`` without a
    ``Limit``, often a pre-24.1 file that only set ``ClientIdHeader`` or a message, enables
    a limit of 0 for every route without options of its own. Ocelot then refuses every
    request on them; so does propylon, but not silently."""
    zero = [source for source, spec in limited if spec.limit == 0]
    if not zero:
        return
    shown = ", ".join(zero[:3]) + (f" and {len(zero) - 3} more" if len(zero) > 3 else "")
    diag.warning(
        GLOBAL,
        f"enables rate limiting with Limit 0 on {len(zero)} route(s) ({shown}): as in "
        "Ocelot 25, EVERY request there is refused (503 without the client id header, "
        "429 with it). Set Limit and Period here, list the intended routes in RouteKeys, "
        "or set EnableRateLimiting: false",
    )
