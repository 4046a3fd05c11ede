"""What one access-log line says, and its two spellings: JSON (one object per line) and
Apache's combined format.

``FIELDS`` is the one list of what a line carries: ``entry`` builds a line's values in that
order and ``json_line`` names them with it, so a new field is one name here and one value
in ``logs/access.py``. Absent values are ``null`` in JSON (every line has every key, which
log pipelines index most easily) and ``-`` in the combined format.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

FIELDS = (
    "time",  # when the response ended, UTC, ISO 8601 with milliseconds (epoch in an Entry)
    "request_id",  # the id sent upstream and back to the client
    "client",  # the client's address (X-Forwarded-For through trusted proxies only)
    "method",
    "route",  # the route's template (null: answered before routing)
    "path",  # the request target as sent, query values redacted unless configured not to
    "status",  # as the client got it; 499 when the client left before the response
    "bytes_in",  # request body bytes received
    "bytes_out",  # response body bytes sent
    "duration_ms",  # from the route taking the request to the last byte (null: unrouted)
    "upstream_ms",  # from choosing the upstream to the end of its response
    "upstream",  # host:port of the upstream that served it
    "sub",  # the verified caller's sub, on authenticated requests
    "rate_limit",  # allowed | limited | unavailable | unidentified, where a limit was judged
    "error",  # the cause of a gateway-made error or an upstream fault
    "traceparent",  # the W3C trace context header the request carried upstream
    "user_agent",
    "worker",
)

Entry = tuple[Any, ...]
"""One line's values, in ``FIELDS`` order."""

REDACTED = "***"

_second = -1
_second_text = ""


def timestamp(now: float) -> str:
    """ISO 8601 UTC with milliseconds; the part up to the second is formatted once a second."""
    global _second, _second_text
    whole = int(now)
    if whole != _second:
        _second = whole
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second_text}.{int((now - whole) * 1000):03d}Z"


def redact(target: bytes) -> str:
    """The request target with every query value replaced by ``***`` (names are kept: they
    say what was asked, values are where tokens, e-mail addresses and ids travel)."""
    path, mark, query = target.partition(b"?")
    text = path.decode("latin-1")
    if not mark:
        return text
    parts = []
    for item in query.decode("latin-1").split("&"):
        name, equals, _value = item.partition("=")
        parts.append(f"{name}={REDACTED}" if equals else name)
    return f"{text}?{'&'.join(parts)}"


_TIME = FIELDS.index("time")


def json_line(entry: Entry) -> bytes:
    record = dict(zip(FIELDS, entry, strict=True))
    record["time"] = timestamp(entry[_TIME])
    return orjson.dumps(record) + b"\n"


_CLIENT = FIELDS.index("client")
_SUB = FIELDS.index("sub")
_METHOD = FIELDS.index("method")
_PATH = FIELDS.index("path")
_STATUS = FIELDS.index("status")
_BYTES_OUT = FIELDS.index("bytes_out")
_USER_AGENT = FIELDS.index("user_agent")


def _quoted(value: object) -> str:
    """A value inside the combined format's quotes: quotes, backslashes and control
    characters escaped as nginx does (``\\x22``), so a line is always one parseable line."""
    if value is None:
        return "-"
    text = str(value)
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(
        c if c.isprintable() and c not in '"\\' else f"\\x{ord(c) & 0xFF:02X}" for c in text
    )


def combined_line(entry: Entry, referer: str | None, http11: bool) -> bytes:
    """``client - sub [time] "METHOD path HTTP/1.x" status bytes "referer" "user-agent"``"""
    now = time.gmtime(entry[_TIME])
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", now)
    sent = entry[_BYTES_OUT]
    client = entry[_CLIENT] or "-"
    user = _quoted(entry[_SUB]).replace(" ", "\\x20")
    method = entry[_METHOD] or "-"
    version = "HTTP/1.1" if http11 else "HTTP/1.0"
    line = (
        f'{client} - {user} [{stamp}] "{method} {_quoted(entry[_PATH])} {version}" '
        f'{entry[_STATUS]} {sent if sent else "-"} "{_quoted(referer)}" '
        f'"{_quoted(entry[_USER_AGENT])}"\n'
    )
    return line.encode("utf-8", "backslashreplace")
