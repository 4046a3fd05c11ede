"""Gateway-made answers keep the connection when that is safe (#11 item 8).

Every 401, 403, 404 and 405 used to close the connection, so a client paid a new TCP (and,
behind a TLS terminator, a new handshake) for each refusal. Now the connection stays open
when the request had no body, or when what remains of its body is small enough to read and
drop; it closes when more remains, or when the client waits for ``100 Continue`` and may
never send the body.
"""

from __future__ import annotations

from tests.support.client import exchange_raw
from tests.support.gateway import BEARER, config, route, running
from tests.support.upstreams import RecordingUpstream


def _routes(port: int) -> tuple[object, ...]:
    return (
        route("/open", port, methods=("GET",)),
        route("/secure", port, auth=BEARER),
    )


async def test_refusals_without_a_body_keep_the_connection() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(*_routes(up.port))) as gw:  # type: ignore[arg-type]
            data = (
                b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /secure HTTP/1.1\r\nHost: t\r\n\r\n"
                b"DELETE /open HTTP/1.1\r\nHost: t\r\n\r\n"
                b"GET /open HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            responses, _raw, closed = await exchange_raw(gw.port, data, expect=4)
        assert [r.status for r in responses] == [404, 401, 405, 200]
        assert all(r.header("Connection") != "close" for r in responses)
        assert not closed
        assert len(up.seen) == 1
    finally:
        await up.close()


async def test_a_small_unread_body_is_dropped_and_the_connection_kept() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(*_routes(up.port))) as gw:  # type: ignore[arg-type]
            body = b"x" * 5000
            data = (
                b"POST /secure HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
                b"GET /open HTTP/1.1\r\nHost: t\r\n\r\n" % (len(body), body)
            )
            responses, _raw, closed = await exchange_raw(gw.port, data, expect=2)
        assert [r.status for r in responses] == [401, 200]
        assert not closed
        # The dropped body was not taken for a request: only the GET reached the upstream.
        assert [s.path_qs for s in up.seen] == ["/open"]
    finally:
        await up.close()


async def test_a_large_unread_body_or_an_expectation_closes_the_connection() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(*_routes(up.port))) as gw:  # type: ignore[arg-type]
            big = b"POST /secure HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\nstart"
            responses, _raw, closed = await exchange_raw(gw.port, big)
            assert [r.status for r in responses] == [401]
            assert responses[0].header("Connection") == "close"
            assert closed
            waits = (
                b"POST /secure HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            responses, _raw, closed = await exchange_raw(gw.port, waits)
            assert [r.status for r in responses] == [401]
            assert closed
        assert up.seen == []
    finally:
        await up.close()
