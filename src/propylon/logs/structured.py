"""The process's own log records (not the access log): ``--log-format text|json``.

``configure`` sets up the stdlib ``logging`` root once, in ``propylon run`` before anything
forks, so the supervisor, every worker and the admin process write the same format.

- ``text`` (the default): ``time LEVEL logger: message``; a security warning (a config key
  that, ignored, leaves the gateway more open than the file reads) is prefixed
  ``SECURITY:``.
- ``json``: one object per line: ``time``, ``level``, ``logger``, ``message``, ``pid``, then
  the record's extra fields (``logging``'s ``extra=``), e.g. ``security: true`` or the
  start-up summary's ``listeners``, ``routes``, ``public_routes``, ``providers``,
  ``workers`` and ``build``; ``exception`` when one was logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson

from propylon.compilation import describe
from propylon.config.model import GatewayConfig, Problem
from propylon.config.summary import public_routes, summary_lines
from propylon.logs.formats import timestamp

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        if getattr(record, "security", False):
            head, sep, message = text.partition(f" {record.name}: ")
            return f"{head}{sep}SECURITY: {message}"
        return text


def configure(fmt: str, level: str, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # A library's warnings (a deprecation, say) become records of this format too: with
    # ``--log-format json`` every line on stderr parses, not only ours.
    logging.captureWarnings(True)


def log_problems(problems: tuple[Problem, ...] | list[Problem]) -> None:
    """Config problems as log records (``run``), with their file and key as fields; a
    security warning at WARNING with ``security: true``."""
    log = logging.getLogger("propylon.config")
    for problem in problems:
        fields: dict[str, Any] = {"file": problem.file, "key": problem.path}
        if problem.security:
            fields["security"] = True
        level = logging.ERROR if problem.severity == "error" else logging.WARNING
        log.log(level, "%s", problem, extra=fields)


def log_startup(config: GatewayConfig, listeners: list[str], workers: int) -> None:
    """The one start-up record: what listens, what is served and to whom. Its text is the
    lines ``check`` prints (so a route left public by a slip shows up here); its fields say
    the same for machines."""
    count = len(config.routes)
    head = (
        f"propylon listening on {' and '.join(listeners)} "
        f"({count} route{'' if count == 1 else 's'}, "
        f"{workers} worker{'' if workers == 1 else 's'})"
    )
    build = describe()
    fields: dict[str, Any] = {
        "event": "started",
        "listeners": listeners,
        "routes": count,
        "public_routes": [
            {"source": spec.source, "route": spec.label} for spec in public_routes(config)
        ],
        "providers": sorted(config.providers),
        "workers": workers,
        "build": build,
    }
    if config.admin is not None:
        fields["admin"] = f"{config.admin.host}:{config.admin.port}"
    if config.access_log is not None:
        fields["access_log"] = config.access_log.path
    text = "\n".join([head, build, *summary_lines(config)])
    logging.getLogger("propylon").info("%s", text, extra=fields)
