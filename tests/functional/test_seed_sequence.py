"""The gateway half of the first seed's sequence diagram, on real sockets."""

from __future__ import annotations

from tests.support.client import request
from tests.support.gateway import BEARER, config, route, running, token
from tests.support.upstreams import RecordingUpstream


async def test_seed_sequence_gateway_half() -> None:
    auth = await RecordingUpstream().start()
    profiles = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/auth/users", auth.port, methods=("POST",)),
            route("/auth/token", auth.port, methods=("POST",)),
            route("/profiles", profiles.port, methods=("GET", "POST"), auth=BEARER),
            route("/profiles/{id}", profiles.port, methods=("GET", "PATCH", "DELETE"), auth=BEARER),
        )
        async with running(cfg) as gw:
            # POST /auth/users: public, reaches the auth service unchanged.
            r = await request(gw.port, "POST", "/auth/users", body=b'{"username":"alice"}')
            assert r.status == 200
            assert auth.last.method == "POST" and auth.last.path_qs == "/auth/users"
            assert auth.last.body == b'{"username":"alice"}'
            assert auth.last.header("User") is None

            # POST /profiles with a token: the service receives User: <sub>.
            t = token("alice")
            r = await request(
                gw.port, "POST", "/profiles", [("Authorization", f"Bearer {t}")], b"{}"
            )
            assert r.status == 200
            assert profiles.last.header("User") == "alice"
            assert profiles.last.headers_named("User") == ["alice"]

            r = await request(gw.port, "GET", "/profiles", [("Authorization", f"Bearer {t}")])
            assert r.status == 200 and profiles.last.method == "GET"

            # GET /no-such-route: 404 with the envelope, no upstream sees it.
            before = len(auth.seen) + len(profiles.seen)
            r = await request(gw.port, "GET", "/no-such-route")
            assert r.status == 404
            assert r.json() == {
                "code": 421,
                "codemessage": "RouteNotFound",
                "message": "No route matches this request.",
            }
            # GET /profiles without or with a bad token: 401, upstream untouched.
            r = await request(gw.port, "GET", "/profiles")
            assert r.status == 401
            assert r.header("WWW-Authenticate") == "Bearer"
            r = await request(gw.port, "GET", "/profiles", [("Authorization", "Bearer nope")])
            assert r.status == 401
            assert (
                r.header(
                    "WWW-Authenticate",
                )
                is not None
            )
            assert len(auth.seen) + len(profiles.seen) == before
    finally:
        await auth.close()
        await profiles.close()
