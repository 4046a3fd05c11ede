"""Gateway-made answers keep the connection when that is safe (#11 item 8).

Every 401, 403, 404 and 405 used to close the connection, so a client paid a new TCP (and,
behind a TLS terminator, a new handshake) for each refusal. Now the connection stays open
when the request had no body, or when what remains of its body is small enough to read and
drop; it closes when more remains, or when the client waits for ``100 Continue`` and may
never send the body.
"""

from __future__ import annotations

from propylon.config.model import AuthRequirement
from tests.support.client import exchange_raw
from tests.support.gateway import BEARER, config, route, running, token
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


# A valid token that lacks what a route requires is a 403, made by the gateway like the
# refusals above: the next request on the connection is served all the same.
_SCOPED = AuthRequirement(providers=("Bearer",), allowed_scopes=("profiles:write",))
_CLAIMED = AuthRequirement(providers=("Bearer",), required_claims=(("role", "admin"),))


def _forbidding_routes(port: int) -> tuple[object, ...]:
    return (
        route("/open", port, methods=("GET",)),
        route("/scoped", port, auth=_SCOPED),
        route("/claimed", port, auth=_CLAIMED),
    )


def _weak_token_line() -> bytes:
    """A valid token with a scope and a role, neither of them the ones required."""
    return b"Authorization: Bearer %s\r\n" % token(scope="profiles:read", role="user").encode()


async def test_403_without_a_body_keeps_the_connection() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(*_forbidding_routes(up.port))) as gw:  # type: ignore[arg-type]
            auth = _weak_token_line()
            data = (
                b"GET /scoped HTTP/1.1\r\nHost: t\r\n%s\r\n"
                b"GET /claimed HTTP/1.1\r\nHost: t\r\n%s\r\n"
                b"GET /open HTTP/1.1\r\nHost: t\r\n\r\n" % (auth, auth)
            )
            responses, _raw, closed = await exchange_raw(gw.port, data, expect=3)
        assert [r.status for r in responses] == [403, 403, 200]
        assert [r.json()["codemessage"] for r in responses[:2]] == ["Restricted"] * 2  # type: ignore[index]
        assert all(r.header("Connection") != "close" for r in responses)
        assert not closed
        assert [s.path_qs for s in up.seen] == ["/open"]
    finally:
        await up.close()


async def test_403_with_a_small_body_drops_it_and_keeps_the_connection() -> None:
    up = await RecordingUpstream().start()
    try:
        async with running(config(*_forbidding_routes(up.port))) as gw:  # type: ignore[arg-type]
            auth = _weak_token_line()
            # The body looks like a request: served as one, it would reach the upstream.
            body = b"GET /open?smuggled HTTP/1.1\r\nHost: t\r\n\r\n" + b"x" * 3000
            data = (
                b"POST /scoped HTTP/1.1\r\nHost: t\r\n%sContent-Length: %d\r\n\r\n%s"
                b"PUT /claimed HTTP/1.1\r\nHost: t\r\n%sContent-Length: %d\r\n\r\n%s"
                b"GET /open HTTP/1.1\r\nHost: t\r\n\r\n"
                % (auth, len(body), body, auth, len(body), body)
            )
            responses, _raw, closed = await exchange_raw(gw.port, data, expect=3)
        assert [r.status for r in responses] == [403, 403, 200]
        assert all(r.header("Connection") != "close" for r in responses)
        assert not closed
        # The dropped bodies were not taken for requests: only the last GET reached the upstream.
        assert [s.path_qs for s in up.seen] == ["/open"]
    finally:
        await up.close()
