"""One parsed client request head, and the single pass that sorts its headers.

The pass runs once per request, so it does everything header-related at once: it keeps the
end-to-end headers that may travel upstream, and pulls out the ones the gateway acts on
(framing, ``Host``, ``Authorization``, ``Connection``, forwarding, request id). The identity
header and every header set from claims are dropped here, in any letter case, before routing or
authentication even start.
"""

from __future__ import annotations

from propylon.policies.forwarding import REQUEST_REWRITTEN, connection_tokens


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
        "forwarded_for",
        "host",
        "hosts_seen",
        "http11",
        "keep_alive",
        "kept",
        "method",
        "request_id",
        "target",
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
        self.host: bytes | None = None
        self.hosts_seen = 0
        self.content_length: int | None = None
        self.chunked = False
        self.expect_continue = False
        self.request_id: bytes | None = None
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


def sort_headers(
    request: Request,
    headers: list[tuple[bytes, bytes]],
    stripped: frozenset[bytes],
    request_id_lower: bytes,
) -> None:
    """Fill ``request`` from the raw header list, or raise HeaderError.

    ``stripped``: lower-case names no client may send (the identity header and the headers
    routes set from claims); they are dropped here, before routing or authentication.
    """
    kept = request.kept
    connection: list[bytes] | None = None
    for name, value in headers:
        lname = name.lower()
        if lname in stripped:
            continue  # never trust a client's claim of identity
        if lname not in REQUEST_REWRITTEN:
            if lname == b"authorization":
                request.authorization.append(value)
            elif lname == request_id_lower:
                request.request_id = value
                continue
            kept.append(name + b": " + value)
            continue
        if lname == b"host":
            request.hosts_seen += 1
            request.host = value.strip()
        elif lname == b"content-length":
            # llhttp already rejects duplicate or malformed Content-Length; stay defensive.
            if request.content_length is not None or not value.strip().isdigit():
                raise HeaderError("bad content-length")
            request.content_length = int(value)
        elif lname == b"transfer-encoding":
            codings = [c.strip().lower() for c in value.split(b",")]
            if codings != [b"chunked"] or request.chunked:
                raise HeaderError("unsupported transfer-encoding")
            request.chunked = True
        elif lname == b"connection":
            if connection is None:
                connection = []
            connection.append(value)
        elif lname == b"expect":
            if value.strip().lower() != b"100-continue":
                raise HeaderError("unsupported expectation")
            request.expect_continue = True
        elif lname == b"x-forwarded-for":
            request.forwarded_for.append(value)
        elif lname == b"upgrade":
            request.upgrade = True
    if request.chunked and request.content_length is not None:
        raise HeaderError("both content-length and transfer-encoding")
    if request.hosts_seen > 1 or (request.http11 and request.hosts_seen == 0):
        raise HeaderError("missing or repeated host")
    if connection is not None:
        listed = connection_tokens(connection)
        if listed:
            # RFC 9110 s.7.6.1: headers named in Connection are for this hop only. This is
            # also how a client would try to make a proxy strip a header it adds itself.
            request.kept = [line for line in kept if line.partition(b":")[0].lower() not in listed]
            if b"authorization" in listed:
                request.authorization = []
