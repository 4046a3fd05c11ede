"""What one access-log line says, and its two spellings: JSON (one object per line) and
Apache's combined format.

``FIELDS`` is the list of what a line carries, in order. ``json_line`` and
``proxied_json_line`` take exactly these facts as arguments, in this order, as the engine
holds them (bytes as received, seconds as floats), and ``combined_line`` those Apache's
format has; the tests hold every line to this list. A new field is one name here and one
argument in each JSON builder. Absent values are ``null`` in
JSON (every line has every key, which log pipelines index most easily) and ``-`` in the
combined format.

A JSON line is built from ready-made fragments (constant keys, values as received), not
a dict handed to a JSON encoder: on a proxied request the line is most of the log's cost,
and an 18-key dict encoded by orjson cost about 38,000 instructions, most of a proxied
request's own 52,000 (docs/performance.md, "The access log"). The proxied line is one
%-format of bytes, which compiled is a single sized copy of its pieces. Values a client
chose (the path, the request id, the ``User-Agent``, the ``sub``) are escaped by orjson
whenever they hold anything but plain printable ASCII, so a line always parses and is
always one line.
"""

from __future__ import annotations

import time
from typing import Final

import orjson

FIELDS = (
    "time",  # when the response ended, UTC, ISO 8601 with milliseconds
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
# Each field's key as it opens its place in the line: '{"time":', ',"request_id":', ...
(
    _TIME,
    _REQUEST_ID,
    _CLIENT,
    _METHOD,
    _ROUTE,
    _PATH,
    _STATUS,
    _BYTES_IN,
    _BYTES_OUT,
    _DURATION,
    _UPSTREAM_DURATION,
    _UPSTREAM,
    _SUB,
    _RATE_LIMIT,
    _ERROR,
    _TRACEPARENT,
    _USER_AGENT,
    _WORKER,
) = tuple((b"," if i else b"{") + b'"' + name.encode() + b'":' for i, name in enumerate(FIELDS))
_END: Final = b"}\n"
_QUOTE: Final = b'"'

REDACTED = b"***"
NULL: Final = b"null"

# Bytes that need no escaping inside a JSON string are printable ASCII but '"' and '\'.
# This table maps each of them to itself and every other byte elsewhere, so a value that
# ``translate`` leaves unchanged (CPython then returns the very same object) is quoted as
# it is: one pass in C, no table built per call as ``translate(None, delete)`` does.
_PLAIN: Final = bytes(
    c if 0x20 <= c < 0x7F and c not in b'"\\' else (c + 1) % 256 for c in range(256)
)
_TRANSLATE: Final = bytes.translate  # bound once: a method looked up by name costs more
_PLAIN_PATH: Final = bytes(b if c != 0x3F else 0x40 for c, b in enumerate(_PLAIN))
"""``_PLAIN`` that also changes ``?``: a target it leaves alone needs neither escaping nor
redaction, one ``translate`` for both questions."""
_SMALL_NUMBERS: Final = tuple(str(n).encode() for n in range(10_000))
_THOUSANDTHS: Final = tuple(b".%03d" % n for n in range(1000))

_MILLIS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))
_MILLIS_JSON: Final = tuple(b'.%03dZ"' % ms for ms in range(1000))


class _Second:
    """A timestamp up to the second, formatted once a second: formatting a time costs more
    than the rest of a line. (Module globals would do, but compiled, each read of one is a
    dictionary lookup; these are fields.)"""

    __slots__ = ("json", "second", "text")

    def __init__(self) -> None:
        self.second = -1
        self.text = ""
        self.json = b""

    def text_of(self, whole: int) -> str:
        if whole != self.second:
            self._format(whole)
        return self.text

    def json_of(self, whole: int) -> bytes:
        """As it opens a JSON string: ``"2026-12-06T20:43:35``."""
        if whole != self.second:
            self._format(whole)
        return self.json

    def _format(self, whole: int) -> None:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        self.text = text
        self.json = b'"' + text.encode("ascii")
        self.second = whole  # last: another thread's log record may read it meanwhile


_SECOND: Final = _Second()


def timestamp(now: float) -> str:
    """ISO 8601 UTC with milliseconds."""
    whole = int(now)
    return _SECOND.text_of(whole) + _MILLIS[int((now - whole) * 1000)]


def json_time(now: float) -> bytes:
    """``timestamp`` as a JSON string."""
    whole = int(now)
    return _SECOND.json_of(whole) + _MILLIS_JSON[int((now - whole) * 1000)]


def redact(target: bytes) -> bytes:
    """The request target with every query value replaced by ``***`` (names are kept: they
    say what was asked, values are where tokens, e-mail addresses and ids travel)."""
    # partition, not find: bytes.find parses its arguments from a tuple (about 1,000
    # instructions a call, against partition's 700).
    path, mark, query = target.partition(b"?")
    if not mark:
        return target
    parts = []
    for item in query.split(b"&"):
        name, equals, _value = item.partition(b"=")
        parts.append(name + b"=" + REDACTED if equals else name)
    return path + b"?" + b"&".join(parts)


# -- JSON fragments ---------------------------------------------------------------------------
def _text(parts: list[bytes], value: bytes | None) -> None:
    """A JSON string of bytes as received (read as Latin-1, like the rest of the gateway)."""
    if value is None:
        parts.append(NULL)
    else:
        parts += (_QUOTE, json_inside(value), _QUOTE)


def _string(parts: list[bytes], value: str | None) -> None:
    parts.append(_string_json(value))


def _string_json(value: str | None) -> bytes:
    """A str as a JSON string (null for None): quoted as it is when plain ASCII."""
    if value is None:
        return NULL
    if value.isascii():
        return b'"%s"' % json_inside(value.encode("ascii"))
    return orjson.dumps(value)


def _number(value: int) -> bytes:
    return _SMALL_NUMBERS[value] if 0 <= value < 10_000 else str(value).encode()


def _micros(seconds: float) -> int:
    """Whole microseconds, rounded (0.003 s is 3000, not 2999.99...); never below zero."""
    micros = int(seconds * 1_000_000.0 + 0.5)
    return micros if micros > 0 else 0


def json_path(target: bytes, redact_query: bool) -> bytes:
    """The request target as it goes inside the line's JSON string: query values redacted
    when ``redact_query``, escaped where needed."""
    if _TRANSLATE(target, _PLAIN_PATH) is target:  # the common case: no query, all plain
        return target
    return json_inside(redact(target) if redact_query else target)


def json_inside(value: bytes) -> bytes:
    """``value`` as the inside of a JSON string: itself when it is plain printable ASCII,
    escaped otherwise."""
    # One translate in C (a compiled loop over the bytes costs three times as much).
    if _TRANSLATE(value, _PLAIN) is value:
        return value
    return orjson.dumps(value.decode("latin-1"))[1:-1]


def _millis(parts: list[bytes], seconds: float | None) -> None:
    """Milliseconds with three decimals (whole microseconds), as a JSON number."""
    if seconds is None:
        parts.append(NULL)
        return
    micros = _micros(seconds)
    parts += (_number(micros // 1000), _THOUSANDTHS[micros % 1000])


def json_text(value: bytes | None) -> bytes:
    """``value`` as it appears in a JSON line (for tests and the rare paths)."""
    parts: list[bytes] = []
    _text(parts, value)
    return b"".join(parts)


def json_line(
    now: float,
    request_id: bytes | None,
    client: str,
    method: bytes | None,
    route: str | None,
    path: bytes | None,
    status: int,
    bytes_in: int,
    bytes_out: int,
    duration: float | None,
    upstream_duration: float | None,
    upstream: str | None,
    sub: str | None,
    rate_limit: str | None,
    error: str | None,
    traceparent: bytes | None,
    user_agent: bytes | None,
    worker: int,
) -> bytes:
    """One JSON object and its newline (``now``: epoch seconds; durations in seconds): the
    line of any answer, null where a fact is absent."""
    parts = [_TIME, json_time(now), _REQUEST_ID]
    _text(parts, request_id)
    parts.append(_CLIENT)
    _string(parts, client)
    parts.append(_METHOD)
    _text(parts, method)
    parts.append(_ROUTE)
    _string(parts, route)
    parts.append(_PATH)
    _text(parts, path)
    parts += (
        _STATUS,
        _number(status),
        _BYTES_IN,
        _number(bytes_in),
        _BYTES_OUT,
        _number(bytes_out),
        _DURATION,
    )
    _millis(parts, duration)
    parts.append(_UPSTREAM_DURATION)
    _millis(parts, upstream_duration)
    parts.append(_UPSTREAM)
    _string(parts, upstream)
    parts.append(_SUB)
    _string(parts, sub)
    parts.append(_RATE_LIMIT)
    _string(parts, rate_limit)
    parts.append(_ERROR)
    _string(parts, error)
    parts.append(_TRACEPARENT)
    _text(parts, traceparent)
    parts.append(_USER_AGENT)
    _text(parts, user_agent)
    parts += (_WORKER, _number(worker), _END)
    return b"".join(parts)


def proxied_json_line(
    now: float,
    request_id: bytes,
    client: str,
    method: bytes,
    route: bytes,
    path: bytes,
    status: int,
    bytes_in: int,
    bytes_out: int,
    duration: float,
    upstream_duration: float,
    upstream: bytes,
    sub: str | None,
    rate_limit: bytes,
    error: str | None,
    traceparent: bytes,
    user_agent: bytes | None,
    worker: bytes,
) -> bytes:
    """A proxied request's line, the one built on every request: ``json_line``'s line
    with the facts every proxied request has spelt directly (the tests hold both to the
    same output). ``route``, ``upstream``, ``rate_limit`` and ``worker`` come as JSON
    already (``json_fragment``: worked out once per route, host and worker); ``client``
    is an address the gateway formatted, ``method`` a token the parser checked and
    ``traceparent`` the one the gateway sent upstream (every proxied request sends one:
    hex digits and dashes, its own or a client's it validated), so these three are
    written as they are; ``request_id`` and ``path`` come ready to go inside a JSON
    string (``json_inside``, ``json_path``: the gateway's own request ids, hex digits,
    need no check)."""
    whole = int(now)
    took = _micros(duration)
    upstream_took = _micros(upstream_duration)
    # One %-format of bytes-typed values, which mypyc compiles to a single sized copy of
    # each piece (CPyBytes_Build): a quarter of what ``b"".join`` of the same 37 pieces
    # costs, whose buffer protocol and array allocation ran to 4,000 instructions a line.
    return (
        b'{"time":%s%s,"request_id":"%s","client":"%s","method":"%s","route":%s,"path":"%s",'
        b'"status":%s,"bytes_in":%s,"bytes_out":%s,"duration_ms":%s%s,"upstream_ms":%s%s,'
        b'"upstream":%s,"sub":%s,"rate_limit":%s,"error":%s,"traceparent":"%s",'
        b'"user_agent":%s,"worker":%s}\n'
        % (
            _SECOND.json_of(whole),
            _MILLIS_JSON[int((now - whole) * 1000)],
            request_id,
            client.encode("latin-1"),
            method,
            route,
            path,
            _number(status),
            _number(bytes_in),
            _number(bytes_out),
            _number(took // 1000),
            _THOUSANDTHS[took % 1000],
            _number(upstream_took // 1000),
            _THOUSANDTHS[upstream_took % 1000],
            upstream,
            NULL if sub is None else json_fragment(sub),
            rate_limit,
            NULL if error is None else json_fragment(error),
            traceparent,
            NULL if user_agent is None else b'"%s"' % json_inside(user_agent),
            worker,
        )
    )


def json_fragment(value: str | int | None) -> bytes:
    """A value as JSON, for what is worked out once (a route's template, a host)."""
    if isinstance(value, int):
        return _number(value)
    return _string_json(value)


# -- the combined format ----------------------------------------------------------------------
def _quoted(value: str | bytes | None) -> str:
    """A value inside the combined format's quotes: quotes, backslashes and control
    characters escaped as nginx does (``\\x22``), so a line is always one parseable line."""
    if value is None:
        return "-"
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(
        c if c.isprintable() and c not in '"\\' else f"\\x{ord(c) & 0xFF:02X}" for c in text
    )


def combined_line(
    now: float,
    client: str,
    method: bytes | None,
    path: bytes | None,
    http11: bool,
    status: int,
    bytes_out: int,
    sub: str | None,
    referer: bytes | None,
    user_agent: bytes | None,
) -> bytes:
    """``client - sub [time] "METHOD path HTTP/1.x" status bytes "referer" "user-agent"``"""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    user = _quoted(sub).replace(" ", "\\x20")
    verb = method.decode("latin-1") if method is not None else "-"
    version = "HTTP/1.1" if http11 else "HTTP/1.0"
    line = (
        f'{client or "-"} - {user} [{stamp}] "{verb} {_quoted(path)} {version}" '
        f'{status} {bytes_out if bytes_out else "-"} "{_quoted(referer)}" '
        f'"{_quoted(user_agent)}"\n'
    )
    return line.encode("utf-8", "backslashreplace")
