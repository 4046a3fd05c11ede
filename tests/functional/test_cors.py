"""CORS and OPTIONS through a real gateway: preflights answered at the gateway (allowed and
refused), the headers actual requests and gateway-made errors carry, Vary, and how OPTIONS
meets authentication in Ocelot files and in native ones."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from propylon.config.loader import load_config
from propylon.config.model import AuthRequirement, CorsPolicy
from tests.support.client import Response, request
from tests.support.gateway import SECRET, config, route, running, token
from tests.support.upstreams import RecordingUpstream

APP = "http://app.example"
EVIL = "http://evil.example"
BEARER = AuthRequirement(providers=("Bearer",))
CREDENTIALED = CorsPolicy(
    origins=(APP, "https://*.example.com"),
    credentials=True,
    max_age=600,
    expose_headers=("X-Request-Id",),
)


def cors_headers(r: Response) -> dict[str, str]:
    return {k.lower(): v for k, v in r.headers if k.lower().startswith("access-control-")}


def varies_on_origin(r: Response) -> bool:
    values = [v for k, v in r.headers if k.lower() == "vary"]
    return any("origin" in (t.strip().lower() for t in v.split(",")) for v in values)


def preflight(
    origin: str, method: str = "PUT", headers: str = "content-type"
) -> list[tuple[str, str]]:
    return [
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
        ("Access-Control-Request-Headers", headers),
    ]


async def test_preflights_are_answered_at_the_gateway() -> None:
    up = await RecordingUpstream().start()
    try:
        # the readers add OPTIONS to a CORS route's methods; a hand-built route says so itself
        cfg = config(
            route(
                "/items/{id}",
                up.port,
                methods=("GET", "PUT", "OPTIONS"),
                auth=BEARER,
                cors=CorsPolicy(
                    origins=CREDENTIALED.origins,
                    methods=("GET", "PUT"),
                    credentials=True,
                    max_age=600,
                    expose_headers=("X-Request-Id",),
                    route_methods=frozenset({"GET", "PUT"}),
                ),
            )
        )
        async with running(cfg) as gw:
            r = await request(gw.port, "OPTIONS", "/items/1", preflight(APP))
            assert r.status == 204 and r.body == b""
            assert cors_headers(r) == {
                "access-control-allow-origin": APP,
                "access-control-allow-credentials": "true",
                "access-control-allow-methods": "GET, PUT",
                "access-control-allow-headers": "Authorization, Content-Type",
                "access-control-max-age": "600",
            }
            assert varies_on_origin(r)
            r = await request(gw.port, "OPTIONS", "/items/1", preflight("https://a.b.example.com"))
            assert cors_headers(r)["access-control-allow-origin"] == ("https://a.b.example.com")
            # refused: another origin, a method or a header the policy does not allow
            for headers in (
                preflight(EVIL),
                preflight("https://example.com.evil.example"),
                preflight(APP, method="DELETE"),
                preflight(APP, headers="x-debug"),
                preflight("null"),
            ):
                r = await request(gw.port, "OPTIONS", "/items/1", headers)
                assert r.status == 403, headers
                assert r.json() == {
                    "code": 409,
                    "codemessage": "Restricted",
                    "message": "The origin may not use this route.",
                }
                assert cors_headers(r) == {}
                assert varies_on_origin(r)
            # an OPTIONS that is no preflight, on a route that does not serve OPTIONS itself
            r = await request(gw.port, "OPTIONS", "/items/1", [("Origin", APP)])
            assert r.status == 405 and r.header("Allow") == "GET, PUT"
            assert up.seen == []  # none of it reached the upstream
    finally:
        await up.close()


async def test_actual_requests_and_gateway_errors_carry_the_origin_headers() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/secure", up.port, auth=BEARER, cors=CREDENTIALED),
            route("/open", up.port, cors=CorsPolicy(origins=("*",))),
        )
        async with running(cfg) as gw:
            expected = {
                "access-control-allow-origin": APP,
                "access-control-allow-credentials": "true",
                "access-control-expose-headers": "X-Request-Id",
            }
            bearer = ("Authorization", f"Bearer {token('alice')}")
            r = await request(gw.port, "GET", "/secure", [("Origin", APP), bearer])
            assert r.status == 200 and cors_headers(r) == expected and varies_on_origin(r)
            assert up.last.header("Origin") == APP  # the upstream still sees who asked
            # the gateway's own 401 is readable by the page too
            r = await request(gw.port, "GET", "/secure", [("Origin", APP)])
            assert r.status == 401 and r.json()["codemessage"] == "Unauthorized"
            assert cors_headers(r) == expected and varies_on_origin(r)
            # another origin gets nothing to read, and the answer says it depends on Origin
            r = await request(gw.port, "GET", "/secure", [("Origin", EVIL), bearer])
            assert r.status == 200 and cors_headers(r) == {} and varies_on_origin(r)
            r = await request(gw.port, "GET", "/secure", [bearer])
            assert r.status == 200 and cors_headers(r) == {} and varies_on_origin(r)
            # "*" is a literal star, not an echo, and depends on nothing
            r = await request(gw.port, "GET", "/open", [("Origin", EVIL)])
            assert cors_headers(r) == {"access-control-allow-origin": "*"}
            assert not varies_on_origin(r)
    finally:
        await up.close()


def _ocelot(tmp_path: Path, port: int) -> Path:
    file = tmp_path / "ocelot.json"
    auth = {"AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"}}
    common = {"DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": port}]}
    file.write_text(
        json.dumps(
            {
                "Routes": [
                    {
                        "UpstreamPathTemplate": "/orders",
                        "DownstreamPathTemplate": "/orders",
                        "AddHeadersToRequest": {"X-Email": "Claims[email] > value"},
                        **auth,
                        **common,
                    },
                    {
                        "UpstreamPathTemplate": "/app",
                        "DownstreamPathTemplate": "/app",
                        "UpstreamHttpMethod": ["Get"],
                        "Cors": {"AllowedOrigins": [APP]},
                        **auth,
                        **common,
                    },
                ]
            }
        )
    )
    return file


async def test_ocelot_options_skip_authentication_and_carry_no_identity(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = load_config(
            str(_ocelot(tmp_path, up.port)), env={"PROPYLON_JWT_SECRET": SECRET.decode()}
        )
        async with running(cfg) as gw:
            valid = f"Bearer {token('alice', email='a@example')}"
            for headers in (
                [],
                [("User", "mallory"), ("X-Email", "boss@example")],
                [("Authorization", valid)],
                [("Authorization", "Bearer not-a-token")],
            ):
                r = await request(gw.port, "OPTIONS", "/orders", headers)
                assert r.status == 200, headers
                seen = up.last
                assert seen.method == "OPTIONS"
                assert seen.headers_named("User") == [] and seen.headers_named("X-Email") == []
            # other methods still need the token, and get the identity with it
            r = await request(gw.port, "GET", "/orders")
            assert r.status == 401
            r = await request(gw.port, "GET", "/orders", [("Authorization", valid)])
            assert r.status == 200 and up.last.header("User") == "alice"
            assert up.last.header("X-Email") == "a@example"
            # a preflight on a CORS route is answered before authentication, never forwarded
            before = len(up.seen)
            r = await request(gw.port, "OPTIONS", "/app", preflight(APP, method="GET", headers=""))
            assert r.status == 204 and cors_headers(r)["access-control-allow-origin"] == APP
            assert len(up.seen) == before
    finally:
        await up.close()


async def test_native_options_need_a_token_unless_the_route_says_so() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/strict", up.port, auth=BEARER),
            route("/relaxed", up.port, auth=BEARER, anonymous_options=True),
        )
        async with running(cfg) as gw:
            r = await request(gw.port, "OPTIONS", "/strict")
            assert r.status == 401 and up.seen == []
            r = await request(
                gw.port, "OPTIONS", "/strict", [("Authorization", f"Bearer {token()}")]
            )
            assert r.status == 200 and up.last.header("User") == "alice"
            r = await request(gw.port, "OPTIONS", "/relaxed", [("User", "mallory")])
            assert r.status == 200 and up.last.headers_named("User") == []
            r = await request(gw.port, "GET", "/relaxed")
            assert r.status == 401
    finally:
        await up.close()


async def test_an_upstreams_own_cors_fields_never_reach_the_browser_next_to_ours() -> None:
    """Two Access-Control-Allow-Origin values make a browser refuse the answer, and an
    upstream's "*" or credentials would allow what the route's policy does not."""

    async def permissive(_request: web.Request, _seen: object) -> web.StreamResponse:
        return web.json_response(
            {"ok": True},
            headers={
                "Access-Control-Allow-Origin": "*",
                "access-control-allow-credentials": "true",
                "Access-Control-Expose-Headers": "X-Secret",
                "X-Kept": "yes",
            },
        )

    up = await RecordingUpstream().start()
    up.handler = permissive
    try:
        cfg = config(
            route("/cors", up.port, cors=CREDENTIALED),
            route("/plain", up.port),
        )
        async with running(cfg) as gw:
            r = await request(gw.port, "GET", "/cors", [("Origin", APP)])
            assert r.status == 200
            assert cors_headers(r) == {
                "access-control-allow-origin": APP,
                "access-control-allow-credentials": "true",
                "access-control-expose-headers": "X-Request-Id",
            }
            assert [v for k, v in r.headers if k.lower() == "access-control-allow-origin"] == [APP]
            assert r.header("X-Kept") == "yes"
            r = await request(gw.port, "GET", "/cors", [("Origin", EVIL)])
            assert cors_headers(r) == {}
            # A route without a gateway CORS policy leaves the upstream's fields alone.
            r = await request(gw.port, "GET", "/plain", [("Origin", EVIL)])
            assert cors_headers(r)["access-control-allow-origin"] == "*"
    finally:
        await up.close()
