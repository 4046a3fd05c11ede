"""The request head a downstream service receives, written once per proxied request.

Kept client headers, then what the route's stages added (identity, claim headers, plugin
headers), the request id, the trace context (``traceparent``, ``tracestate``), forwarding
facts (``X-Forwarded-*``, ``X-Real-IP``: the gateway's own, or a trusted proxy's extended),
and the framing the gateway will actually send.
"""

from __future__ import annotations

from propylon.http.request import Request
from propylon.policies.forwarding import TrustedProxies


def forwarding_lines(peer: str, port: int, scheme: bytes = b"http") -> bytes:
    """What the gateway states about a client connection, when no trusted proxy spoke for
    it: computed once per connection, sent with each of its requests. ``scheme`` is how the
    client reached the listener (``https`` on the TLS listener)."""
    address = peer.encode("ascii")
    return (
        b"X-Forwarded-For: %s\r\nX-Real-IP: %s\r\nX-Forwarded-Proto: %s\r\n"
        b"X-Forwarded-Port: %d" % (address, address, scheme, port)
    )


class HeadComposer:
    """Writes upstream request heads: kept headers + identity + forwarding + framing."""

    __slots__ = ("proxies",)

    def __init__(self, proxies: TrustedProxies) -> None:
        self.proxies = proxies

    def upstream_head(
        self,
        request: Request,
        target: bytes,
        host_header: bytes,
        *,
        allow_underscores: bool,
        peer: str,
        local_port: int,
        scheme: bytes,
        connection_lines: bytes,
        stage_lines: list[bytes],
        request_id_line: bytes,
        trace_lines: bytes,
    ) -> bytes:
        lines = [
            request.method + b" " + target + b" HTTP/1.1",
            b"Host: " + host_header,
            *request.kept,
        ]
        if request.underscored is not None and allow_underscores:
            lines.extend(request.underscored)
        lines.extend(stage_lines)
        lines.append(request_id_line)
        lines.append(trace_lines)
        if (request.forwarded_for or request.forwarded_facts) and self.proxies.trusts(peer):
            self._trusted_forwarding(lines, request, peer, local_port, scheme)
        else:
            lines.append(connection_lines)
            if request.host is not None:
                lines.append(b"X-Forwarded-Host: " + request.host)
        if request.chunked:
            lines.append(b"Transfer-Encoding: chunked")
        elif request.content_length is not None:
            lines.append(b"Content-Length: %d" % request.content_length)
        lines.append(b"\r\n")
        return b"\r\n".join(lines)

    def _trusted_forwarding(
        self, lines: list[bytes], request: Request, peer: str, local_port: int, scheme: bytes
    ) -> None:
        """A trusted proxy spoke for the client: extend its chain, keep what it stated about
        the original request (scheme, host, port), and fill in what it did not say."""
        proxies = self.proxies
        lines.append(b"X-Forwarded-For: " + proxies.forwarded_for(peer, request.forwarded_for))
        client = proxies.client_address(peer, request.forwarded_for)
        lines.append(b"X-Real-IP: " + client.encode("ascii"))
        stated: dict[bytes, bytes] = {}
        for line in request.forwarded_facts or ():
            name, _, value = line.partition(b":")
            stated.setdefault(name.strip().lower(), value.strip())
        ours: dict[bytes, bytes | None] = {
            b"x-forwarded-proto": scheme,
            b"x-forwarded-host": request.host,
            b"x-forwarded-port": b"%d" % local_port,
        }
        for lower, name in _FACT_NAMES:
            fact = stated.get(lower, ours[lower])
            if fact is not None:
                lines.append(name + b": " + fact)


def with_host(head: bytes, old: bytes, new: bytes) -> bytes:
    """``head`` (written by ``HeadComposer``) for another host: its ``Host`` line, always
    the second, says ``new`` instead of ``old``. For a retry on another host only."""
    start = head.index(b"\r\n") + len(b"\r\nHost: ")
    return head[:start] + new + head[start + len(old) :]


_FACT_NAMES = (
    (b"x-forwarded-proto", b"X-Forwarded-Proto"),
    (b"x-forwarded-host", b"X-Forwarded-Host"),
    (b"x-forwarded-port", b"X-Forwarded-Port"),
)
