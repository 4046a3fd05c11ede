"""One parsed client request head, and the single pass that sorts its headers.

The pass runs once per request, so it does everything header-related at once: it keeps the
end-to-end headers that may travel upstream, and pulls out the ones the gateway acts on
(framing, ``Host``, ``Authorization``, ``Connection``, forwarding, request id, trace
context). The identity
header and every header set from claims are dropped here, in any letter case, before routing or
authentication even start.
"""

from __future__ import annotations

from typing import Final

from propylon.http.host import HostCheck, HostRejected
from propylon.policies.forwarding import FORWARDED_FACTS, REQUEST_REWRITTEN, connection_tokens


class Request:
    __slots__ = (
        "authorization",
        "body",
        "body_size",
        "chunked",
        "complete",
        "content_length",
        "discard",
        "discard_limit",
        "expect_continue",
        "forwarded_facts",
        "forwarded_for",
        "host",
        "hosts_seen",
        "http11",
        "keep_alive",
        "kept",
        "method",
        "request_id",
        "target",
        "traceparent",
        "tracestate",
        "underscored",
        "upgrade",
    )

    def __init__(self, method: bytes, target: bytes, http11: bool, keep_alive: bool) -> None:
        self.method = method
        self.target = target
        self.http11 = http11
        self.keep_alive = keep_alive
        self.kept: list[bytes] = []
        """``Name: value`` lines of the headers that may go upstream, in arrival order."""
        self.authorization: list[bytes] = []
        self.forwarded_for: list[bytes] = []
        self.forwarded_facts: list[bytes] | None = None
        """``X-Forwarded-Proto/-Host/-Port`` lines as received: sent on only from a trusted
        proxy (None: there were none, the common case)."""
        self.underscored: list[bytes] | None = None
        """Header lines whose names contain ``_``, held back unless the route allows them."""
        self.host: bytes | None = None
        self.hosts_seen = 0
        self.content_length: int | None = None
        self.chunked = False
        self.expect_continue = False
        self.request_id: bytes | None = None
        self.traceparent: bytes | None = None
        """The client's W3C ``traceparent`` as received (b"": it sent several, none valid)."""
        self.tracestate: bytes | None = None
        """The client's ``tracestate`` (several fields joined with commas, as RFC 9110 s.5.3
        allows for a list)."""
        self.upgrade = False
        self.body: list[bytes] = []
        """Body chunks received before an upstream connection could take them."""
        self.body_size = 0
        self.complete = False
        self.discard = False
        """The body is read and dropped (the gateway answers, or answered, by itself)..."""
        self.discard_limit = 0
        """... up to this many body bytes in all; beyond them the connection closes."""

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


class HeaderError(ValueError):
    """The head is not acceptable (-> 400); ``reason`` is for logs only."""


class HeaderRules:
    """Which client header names the gateway drops, built once from the config.

    ``stripped``: lower-case names no client may send (the identity header, the headers
    routes set from claims, and the forwarding headers frameworks trust, such as
    ``X-Real-IP``); dropped before routing or authentication. ``owned``: every name the
    gateway sets or strips, with ``-`` for ``_``: a client header whose name reads as one of
    them once ``_`` becomes ``-`` (``X_User``) is always dropped, because CGI/WSGI stacks
    treat the two alike. Other underscored names wait in ``Request.underscored``: they go
    upstream only on routes that allow them.
    """

    __slots__ = ("hosts", "kinds", "owned", "request_id_lower", "stripped")

    def __init__(self, stripped: frozenset[bytes], request_id_lower: bytes) -> None:
        self.stripped = stripped
        self.request_id_lower = request_id_lower
        self.owned = stripped | REQUEST_REWRITTEN | {request_id_lower, b"authorization"}
        self.hosts = HostCheck()
        self.kinds: dict[bytes, int] = {}
        """Header name as received -> what ``classify`` says of it. Clients send the same
        few names again and again, and one lookup replaces a ``lower()``, two set lookups
        and a search for ``_`` per header (most of what sorting a header cost)."""

    def kind(self, name: bytes) -> int:
        """``classify(name)``, remembered (at most ``REMEMBERED_NAMES`` names: a client
        inventing names makes the memo start over, never grow)."""
        kinds = self.kinds
        found = kinds.get(name)
        if found is not None:
            return found
        kind = self.classify(name.lower())
        if len(kinds) >= REMEMBERED_NAMES:
            kinds.clear()
        kinds[name] = kind
        return kind

    def classify(self, lname: bytes) -> int:
        """What ``sort_headers`` does with a header named ``lname`` (lower case)."""
        if lname in self.stripped:
            return DROPPED  # never trust a client's claim of identity
        if lname not in REQUEST_REWRITTEN:
            # find(), not ``in``: CPython's bytes.__contains__ first tries its argument as
            # an integer and raises (and formats) a TypeError for a bytes one.
            if lname.find(b"_") != -1:
                if lname.replace(b"_", b"-") in self.owned:
                    return DROPPED
                return UNDERSCORED
            if lname == b"authorization":
                return AUTHORIZATION
            if lname == self.request_id_lower:
                return REQUEST_ID
            return KEPT
        return _REWRITTEN_KINDS.get(lname, DROPPED)


REMEMBERED_NAMES: Final = 1024

# What sort_headers does with a header, by name (HeaderRules.classify).
KEPT: Final = 0
"""End to end: kept for upstream, in arrival order."""
DROPPED: Final = 1
"""Stripped (identity, claim and forwarding headers frameworks trust; hop-by-hop)."""
UNDERSCORED: Final = 2
"""A name with ``_``: held back unless the route allows it."""
AUTHORIZATION: Final = 3
REQUEST_ID: Final = 4
HOST: Final = 5
CONTENT_LENGTH: Final = 6
TRANSFER_ENCODING: Final = 7
CONNECTION: Final = 8
EXPECT: Final = 9
FORWARDED_FOR: Final = 10
FORWARDED_FACT: Final = 11
UPGRADE: Final = 12
TRACEPARENT: Final = 13
TRACESTATE: Final = 14

_REWRITTEN_KINDS: Final[dict[bytes, int]] = {
    b"host": HOST,
    b"content-length": CONTENT_LENGTH,
    b"transfer-encoding": TRANSFER_ENCODING,
    b"connection": CONNECTION,
    b"expect": EXPECT,
    b"x-forwarded-for": FORWARDED_FOR,
    b"upgrade": UPGRADE,
    b"traceparent": TRACEPARENT,
    b"tracestate": TRACESTATE,
    **{name: FORWARDED_FACT for name in FORWARDED_FACTS},
}
"""The names the gateway rewrites that it reads; every other one of REQUEST_REWRITTEN is
dropped."""


def sort_headers(request: Request, headers: list[tuple[bytes, bytes]], rules: HeaderRules) -> None:
    """Fill ``request`` from the raw header list, or raise HeaderError."""
    kept = request.kept
    connection: list[bytes] | None = None
    for name, value in headers:
        kind = rules.kind(name)
        if kind == KEPT:
            kept.append(name + b": " + value)
        elif kind == DROPPED:
            continue
        elif kind == AUTHORIZATION:
            request.authorization.append(value)
            kept.append(name + b": " + value)
        elif kind == HOST:
            request.hosts_seen += 1
            request.host = value.strip()
        elif kind == UNDERSCORED:
            if request.underscored is None:
                request.underscored = []
            request.underscored.append(name + b": " + value)
        elif kind == REQUEST_ID:
            request.request_id = value
        elif kind == CONTENT_LENGTH:
            # llhttp already rejects duplicate or malformed Content-Length; stay defensive.
            if request.content_length is not None or not value.strip().isdigit():
                raise HeaderError("bad content-length")
            request.content_length = int(value)
        elif kind == TRANSFER_ENCODING:
            codings = [c.strip().lower() for c in value.split(b",")]
            if codings != [b"chunked"] or request.chunked:
                raise HeaderError("unsupported transfer-encoding")
            request.chunked = True
        elif kind == CONNECTION:
            if connection is None:
                connection = []
            connection.append(value)
        elif kind == EXPECT:
            if value.strip().lower() != b"100-continue":
                raise HeaderError("unsupported expectation")
            request.expect_continue = True
        elif kind == FORWARDED_FOR:
            request.forwarded_for.append(value)
        elif kind == FORWARDED_FACT:
            if request.forwarded_facts is None:
                request.forwarded_facts = []
            request.forwarded_facts.append(name + b": " + value)
        elif kind == UPGRADE:
            request.upgrade = True
        elif kind == TRACEPARENT:
            # Read here, written upstream by the gateway (tracing/context.py); two of them
            # make neither valid (W3C Trace Context s.3.2: one traceparent per request).
            request.traceparent = value.strip() if request.traceparent is None else b""
        elif kind == TRACESTATE:
            state = value.strip()
            request.tracestate = (
                state if request.tracestate is None else request.tracestate + b"," + state
            )
    if request.chunked and request.content_length is not None:
        raise HeaderError("both content-length and transfer-encoding")
    if request.hosts_seen > 1 or (request.http11 and request.hosts_seen == 0):
        raise HeaderError("missing or repeated host")
    if request.host is not None:
        try:
            request.host = rules.hosts.normalise(request.host)
        except HostRejected:
            raise HeaderError("bad host") from None
    if connection is not None:
        listed = connection_tokens(connection)
        if listed:
            # RFC 9110 s.7.6.1: headers named in Connection are for this hop only. This is
            # also how a client would try to make a proxy strip a header it adds itself.
            request.kept = [line for line in kept if line.partition(b":")[0].lower() not in listed]
            if request.underscored is not None:
                request.underscored = [
                    line
                    for line in request.underscored
                    if line.partition(b":")[0].lower() not in listed
                ]
            if b"authorization" in listed:
                request.authorization = []
