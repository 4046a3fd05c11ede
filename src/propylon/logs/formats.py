"""What one access-log line says, and its two spellings: JSON (one object per line) and
Apache's combined format.

``FIELDS`` is the list of what a line carries, in order; ``AccessLog`` (``logs/access.py``:
``exchange_ended`` for proxied requests, ``_emit`` for the gateway's own answers) builds each
line's record with exactly these keys (a dict display: the cheapest way to build one), and
the tests hold each to this list. A new field is one
name here and one entry there. Absent values are ``null`` in JSON (every line has every
key, which log pipelines index most easily) and ``-`` in the combined format.
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

Entry = dict[str, Any]
"""One line's record: ``FIELDS`` as keys, ``time`` as epoch seconds until it is written."""

REDACTED = "***"

_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))
_second = -1
_second_text = ""


def timestamp(now: float) -> str:
    """ISO 8601 UTC with milliseconds; the part up to the second is formatted once a second
    (formatting a time costs more than the rest of a line)."""
    global _second, _second_text
    whole = int(now)
    if whole != _second:
        _second = whole
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return _second_text + _MILLIS[int((now - whole) * 1000)]


def redact(target: bytes) -> str:
    """The request target with every query value replaced by ``***`` (names are kept: they
    say what was asked, values are where tokens, e-mail addresses and ids travel)."""
    if target.find(b"?") < 0:  # find, not ``in``: see http/request.py
        return target.decode("latin-1")
    path, _mark, query = target.partition(b"?")
    text = path.decode("latin-1")
    parts = []
    for item in query.decode("latin-1").split("&"):
        name, equals, _value = item.partition("=")
        parts.append(f"{name}={REDACTED}" if equals else name)
    return f"{text}?{'&'.join(parts)}"


def json_line(entry: Entry) -> bytes:
    entry["time"] = timestamp(entry["time"])
    return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)


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
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(entry["time"]))
    sent = entry["bytes_out"]
    client = entry["client"] or "-"
    user = _quoted(entry["sub"]).replace(" ", "\\x20")
    method = entry["method"] or "-"
    version = "HTTP/1.1" if http11 else "HTTP/1.0"
    line = (
        f'{client} - {user} [{stamp}] "{method} {_quoted(entry["path"])} {version}" '
        f'{entry["status"]} {sent if sent else "-"} "{_quoted(referer)}" '
        f'"{_quoted(entry["user_agent"])}"\n'
    )
    return line.encode("utf-8", "backslashreplace")
