"""Typed reads of environment settings, failing with the variable's name on bad input.

Every failure is a `SettingError` whose message is one line that names the variable; the
service entry point prints it and exits (servicekit.serving), without a traceback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingError(ValueError):
    pass


def env_str(environ: Mapping[str, str], name: str, default: str) -> str:
    return environ.get(name, default)


def env_optional(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "")
    return value or None


def env_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingError(f"{name} must be true or false, got {raw!r}")


def env_networks(
    environ: Mapping[str, str], name: str, default: tuple[str, ...]
) -> tuple[Network, ...]:
    """A comma-separated list of addresses or CIDRs; empty means none."""
    raw = environ.get(name)
    items = default if raw is None else tuple(p.strip() for p in raw.split(",") if p.strip())
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        raise SettingError(f"{name} must be comma-separated addresses or CIDRs: {exc}") from None


def database_url(name: str, url: str) -> str:
    """`url` if SQLAlchemy can parse it and knows its dialect, else a one-line error.

    The value is not echoed: a database URL may carry a password.
    """
    example = "e.g. sqlite:///data/service.db or postgresql+psycopg://user@host/db"
    try:
        dialect = make_url(url).get_dialect()
    except NoSuchModuleError:
        raise SettingError(
            f"{name} names an unknown database dialect or driver ({example})"
        ) from None
    except (ArgumentError, ValueError):
        raise SettingError(f"{name} is not a database URL ({example})") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise SettingError(
            f"{name} needs the Python package {exc.name or 'of its driver'!r}, which is not "
            "installed (install the service with its [postgresql] extra)"
        ) from None
    return url


def env_database_url(environ: Mapping[str, str], name: str, default: str) -> str:
    return database_url(name, env_str(environ, name, default))


def refuse_retired(environ: Mapping[str, str], name: str, instead: str) -> None:
    """A variable that no longer does anything is refused rather than silently ignored."""
    if environ.get(name):
        raise SettingError(f"{name} is no longer used: {instead}")
