"""Every response the gateway makes itself is written here, and nowhere else.

Error envelopes (401, 404, 429, 502 ...), the ``/stats`` JSON and answers stages composed
(a CORS preflight) share one head writer: the status line, the framing, ``Connection``, the
request id, and the header lines the route's stages added for the client (rate-limit and
CORS headers), so a gateway-made answer carries them exactly like a proxied one does.
"""

from __future__ import annotations

from http import HTTPStatus

from propylon import errors
from propylon.http.request import Request
from propylon.plane.stage import Reply
from propylon.policies.request_id import RequestIdPolicy

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
"""The interim answer to ``Expect: 100-continue``, sent once the route accepted the request."""
_REASONS = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_JSON = b"Content-Type: application/json"
_NO_STORE = b"Cache-Control: no-store"
_KEEP = b"Connection: keep-alive"
_CLOSE = b"Connection: close"


class Responder:
    __slots__ = ("request_id",)

    def __init__(self, request_id: RequestIdPolicy) -> None:
        self.request_id = request_id

    def error(
        self,
        kind: errors.ErrorKind,
        request: Request | None,
        *,
        keep_alive: bool,
        headers: tuple[tuple[str, str], ...] = (),
        stage_lines: list[bytes] | None = None,
    ) -> bytes:
        """``kind``'s JSON envelope (no request: the stream broke before one was read)."""
        lines = [_JSON]
        for name, value in headers:
            lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
        body = errors.envelope(kind.code, kind.codemessage, kind.message)
        return self._render(kind.status, lines, body, request, keep_alive, stage_lines)

    def json(self, request: Request, status: int, body: bytes, *, keep_alive: bool) -> bytes:
        """A JSON document the gateway serves itself (``/stats``): never cached."""
        return self._render(status, [_JSON, _NO_STORE], body, request, keep_alive, None)

    def reply(
        self,
        reply: Reply,
        request: Request,
        *,
        keep_alive: bool,
        stage_lines: list[bytes] | None,
    ) -> bytes:
        """A stage's answer: an envelope, or the response the stage composed."""
        kind = reply.kind
        if kind is not None:
            return self.error(
                kind, request, keep_alive=keep_alive, headers=reply.headers, stage_lines=stage_lines
            )
        return self._render(
            reply.status, list(reply.lines), reply.body, request, keep_alive, stage_lines
        )

    def _render(
        self,
        status: int,
        lines: list[bytes],
        body: bytes,
        request: Request | None,
        keep_alive: bool,
        stage_lines: list[bytes] | None,
    ) -> bytes:
        reason = _REASONS.get(status, b"-")
        rid = self.request_id.choose(request.request_id if request is not None else None)
        if request is not None:
            request.request_id = rid  # the access log writes the id the client got
        out = [b"HTTP/1.1 %d %s" % (status, reason), *lines]
        if stage_lines:
            out.extend(stage_lines)
        if status != 204 and status != 304:
            out.append(b"Content-Length: %d" % len(body))
        out.append(_KEEP if keep_alive else _CLOSE)
        out.append(self.request_id.name + b": " + rid)
        out.append(b"\r\n")
        head = b"\r\n".join(out)
        if (request is not None and request.method == b"HEAD") or status == 204 or status == 304:
            return head
        return head + body
