"""Differential framing test: what the upstream parses is exactly what the gateway meant to send.

Hypothesis generates client requests that mix the framing features attackers combine:
Upgrade (with and without ``Connection: upgrade``), CONNECT, TRACE, ``Expect:
100-continue``, Content-Length, chunked bodies, bodies that contain a whole second request,
requests the gateway answers itself (401, 404, 413, 501), and pipelining or sequential
connections that reuse pooled upstream connections. They go through a real gateway to an
upstream that parses its raw byte stream with strict framing (``FramingUpstream``), and may
answer before reading a body as many frameworks do.

The oracle is a small model of the gateway's policy (which requests it refuses, which it
forwards, when it closes the client connection). The test asserts, one for one, that the
upstream's byte stream parses into exactly the requests the model says are forwarded, with
the bodies the client sent, and that no upstream connection stops inside a message.

``make test`` runs a bounded number of examples. By hand, longer:
``PROPYLON_FRAMING_EXAMPLES=2000 .venv/bin/pytest tests/functional/test_framing_differential.py``
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from propylon.config.model import Limits
from tests.support.framing import FramingUpstream, converse
from tests.support.gateway import BEARER, config, route, running, token

MAX_BODY = 2048
EXAMPLES = int(os.environ.get("PROPYLON_FRAMING_EXAMPLES", "40"))
SMUGGLED = (
    b"GET /admin/smuggled HTTP/1.1\r\nHost: svc\r\nUser: admin\r\nContent-Length: 5\r\n\r\nhello"
)
VALID = token("alice")


@dataclass(frozen=True)
class ClientRequest:
    method: str
    path: str
    authorised: bool
    upgrade: str  # "" | "header-only" | "full"
    framing: str  # "none" | "length" | "length-zero" | "chunked" | "too-large"
    body: bytes
    expect: bool

    @property
    def has_body(self) -> bool:
        return self.framing in ("length", "chunked", "too-large") and (
            self.framing == "chunked" or len(self.wire_body) > 0
        )

    @property
    def wire_body(self) -> bytes:
        if self.framing == "too-large":
            return b"z" * (MAX_BODY + 100)
        return self.body if self.framing in ("length", "chunked") else b""

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", "Host: gateway.test"]
        if self.authorised:
            lines.append(f"Authorization: Bearer {VALID}")
        if self.upgrade == "full":
            lines += ["Connection: Upgrade", "Upgrade: foo"]
        elif self.upgrade == "header-only":
            lines.append("Upgrade: foo")
        if self.expect and self.framing != "none":
            lines.append("Expect: 100-continue")
        body = self.wire_body
        if self.framing in ("length", "too-large"):
            lines.append(f"Content-Length: {len(body)}")
        elif self.framing == "length-zero":
            lines.append("Content-Length: 0")
        elif self.framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.framing == "chunked":
            half = len(body) // 2
            chunks = [c for c in (body[:half], body[half:]) if c]
            return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        return head + body


def model(requests: list[ClientRequest]) -> tuple[list[int], list[tuple[str, str, bytes]]]:
    """What the gateway answers, and what it forwards, for requests on one connection."""
    statuses: list[int] = []
    forwarded: list[tuple[str, str, bytes]] = []
    # Once a request is being forwarded, the ones pipelined behind it wait in a queue while
    # their bodies arrive; a request refused straight away is refused before its body came.
    queued = False
    for r in requests:
        if r.method == "CONNECT" or (r.upgrade == "full" and r.has_body):
            statuses.append(501)
            break  # refused at the parser: the connection closes
        status = 0
        if r.framing == "too-large":
            status = 413
        elif r.method == "TRACE":
            status = 501
        elif not (r.path.startswith("/public/") or r.path.startswith("/admin/")):
            status = 404
        elif r.path.startswith("/admin/") and not r.authorised:
            status = 401
        if status:
            statuses.append(status)
            if r.has_body and r.expect and not queued:
                break  # the body may never come: the gateway closes
            continue
        queued = True
        statuses.append(200)
        forwarded.append((r.method, r.path, r.wire_body))
    return statuses, forwarded


bodies = st.one_of(
    st.binary(min_size=0, max_size=64),
    st.just(SMUGGLED),
    st.builds(lambda pad: pad + SMUGGLED, st.binary(min_size=1, max_size=20)),
)
client_requests = st.builds(
    ClientRequest,
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE"]),
    path=st.sampled_from(["/public/a", "/public/b?q=1", "/admin/x", "/nowhere"]),
    authorised=st.booleans(),
    upgrade=st.sampled_from(["", "", "header-only", "full"]),
    framing=st.sampled_from(["none", "length", "length-zero", "chunked", "too-large"]),
    body=bodies,
    expect=st.booleans(),
)


async def _run(
    requests: list[ClientRequest], pipelined: bool, answer_early: bool
) -> tuple[list[int], FramingUpstream]:
    upstream = await FramingUpstream(answer_early=answer_early).start()
    try:
        cfg = config(
            route("/public/{x}", upstream.port, "/public/{x}"),
            route("/admin/{x}", upstream.port, "/admin/{x}", auth=BEARER),
            limits=Limits(max_body_bytes=MAX_BODY),
        )
        statuses: list[int] = []
        async with running(cfg) as gw:
            if pipelined:
                data = b"".join(r.encode() for r in requests)
                view = await converse(gw.port, data, [r.method for r in requests], timeout=1.5)
                statuses = view.statuses
            else:
                for r in requests:
                    view = await converse(gw.port, r.encode(), [r.method], timeout=1.5)
                    statuses += view.statuses or [0]
            await asyncio.sleep(0.05)  # let the upstream parse what is still in flight
        return statuses, upstream
    finally:
        await upstream.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    requests=st.lists(client_requests, min_size=1, max_size=5),
    pipelined=st.booleans(),
    answer_early=st.booleans(),
)
def test_upstream_receives_exactly_what_the_gateway_forwards(
    requests: list[ClientRequest], pipelined: bool, answer_early: bool
) -> None:
    statuses, upstream = uvloop.run(_run(requests, pipelined, answer_early))
    if pipelined:
        expected_statuses, expected_forwarded = model(requests)
    else:
        expected_statuses, expected_forwarded = [], []
        for r in requests:
            s, f = model([r])
            expected_statuses += s
            expected_forwarded += f
    got = [(r.method, r.target, r.body) for r in upstream.received]
    assert got == expected_forwarded
    assert upstream.leftover == []
    assert statuses == expected_statuses
    for received in upstream.received:
        assert received.headers_named("User") == (
            ["alice"] if received.target.startswith("/admin/") else []
        )
        assert received.header("Upgrade") is None
