"""The access log's settings: the native ``access_log`` block and ``--access-log``.

Both name one destination; the flags win over the file (``--access-log-format`` alone
changes the format of the file's log). Off unless one of them asks for it. Whether the path
can be opened is checked by ``run`` before any worker starts (``check`` only reads the file,
it never creates the log).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Literal

from pydantic import ValidationError

from propylon.config.diagnostics import Diagnostics
from propylon.config.model import AccessLogSpec, ConfigError, GatewayConfig, Problem
from propylon.config.native_settings import Strict

ACCESS_LOG_FLAG = "--access-log"
STDOUT = "-"


class _AccessLog(Strict):
    path: str
    format: Literal["json", "combined"] = "json"
    redact_query: bool = True


def read_access_log(raw: object, diag: Diagnostics) -> AccessLogSpec | None:
    if raw is None:
        return None
    try:
        given = _AccessLog.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, ("access_log",), _AccessLog)
        return None
    if not given.path.strip():
        diag.error(("access_log", "path"), "must be a file path, or - for standard output")
        return None
    return AccessLogSpec(given.path, given.format, given.redact_query)


def with_access_log_flags(
    config: GatewayConfig, path: str | None, fmt: str | None
) -> GatewayConfig:
    """The config with ``--access-log`` / ``--access-log-format`` applied; ConfigError when
    a format is given without any log to apply it to."""
    spec = config.access_log
    if path is not None:
        spec = AccessLogSpec(
            path,
            fmt or (spec.format if spec is not None else "json"),
            spec.redact_query if spec is not None else True,
        )
    elif fmt is not None:
        if spec is None:
            raise ConfigError(
                [
                    Problem(
                        "--access-log-format",
                        "",
                        "there is no access log to format: give --access-log PATH|- "
                        "(or an access_log block in the config)",
                    )
                ]
            )
        spec = replace(spec, format=fmt)
    return config if spec is config.access_log else replace(config, access_log=spec)


def open_problem(spec: AccessLogSpec, file: str, key: str) -> Problem | None:
    """Why the log's file cannot be opened for appending (None: it can; it is created,
    empty, when missing, as each worker would create it)."""
    if spec.path == STDOUT:
        return None
    try:
        fd = os.open(spec.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    except OSError as exc:
        return Problem(file, key, f"cannot open the access log {spec.path}: {exc.strerror or exc}")
    os.close(fd)
    return None
