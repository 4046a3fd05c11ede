"""GET /stats: what it reports, and who may read it."""

from __future__ import annotations

from propylon.config.model import AuthRequirement, StatsAccess
from tests.support.client import request
from tests.support.gateway import BEARER, config, route, running, token
from tests.support.upstreams import RecordingUpstream, free_port


async def test_stats_counts_per_route_template_and_upstream() -> None:
    up = await RecordingUpstream().start()
    dead = free_port()
    try:
        cfg = config(
            route("/profiles/{id}", up.port, methods=("GET",), auth=BEARER),
            route("/down", dead),
        )
        async with running(cfg) as gw:
            t = token()
            for i in range(5):
                await request(gw.port, "GET", f"/profiles/{i}", [("Authorization", f"Bearer {t}")])
            await request(gw.port, "GET", "/profiles/9")  # 401
            await request(gw.port, "GET", "/down")  # 502
            await request(gw.port, "GET", "/nowhere")  # 404, unrouted
            r = await request(gw.port, "GET", "/stats")
            assert r.status == 200
            assert r.header("Content-Type") == "application/json"
            report = r.json()
            assert isinstance(report, dict)
            text = r.body.decode()
            # Routes are named by template, never by a raw request path.
            assert "/profiles/3" not in text and "/nowhere" not in text
            routes = {entry["route"]: entry for entry in report["routes"]}
            profiles = routes["GET /profiles/{id}"]
            assert profiles["requests"] == 6
            assert profiles["responses"]["2xx"] == 5
            assert profiles["responses"]["4xx"] == 1
            assert profiles["latency_ms"]["p50"] is not None
            assert profiles["bytes_out"] > 0
            assert profiles["in_flight"] == 0
            down = routes["* /down"]
            assert down["responses"]["5xx"] == 1 and down["upstream_errors"] == 1
            assert report["upstreams"][f"127.0.0.1:{dead}"]["errors"] == 1
            assert report["upstreams"][f"127.0.0.1:{dead}"]["last_error"] == "refused"
            assert report["upstreams"][f"127.0.0.1:{up.port}"]["requests"] == 5
            assert report["uptime_seconds"] >= 0
            assert report["totals"]["requests"] >= 8
    finally:
        await up.close()


async def test_stats_refused_outside_allowed_cidrs_unless_token_allows() -> None:
    up = await RecordingUpstream().start()
    try:
        access = StatsAccess(
            allow_cidrs=("10.0.0.0/8",),
            auth=AuthRequirement(providers=("Bearer",), required_claims=(("role", "ops"),)),
        )
        async with running(config(route("/x", up.port), stats=access)) as gw:
            r = await request(gw.port, "GET", "/stats")
            assert r.status == 403
            assert "routes" not in r.body.decode()
            r = await request(
                gw.port, "GET", "/stats", [("Authorization", f"Bearer {token(role='user')}")]
            )
            assert r.status == 403
            r = await request(
                gw.port, "GET", "/stats", [("Authorization", f"Bearer {token(role='ops')}")]
            )
            assert r.status == 200
            r = await request(gw.port, "POST", "/stats", body=b"")
            assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    finally:
        await up.close()


async def test_method_not_allowed_lists_allow() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(route("/x", up.port, methods=("GET",)), route("/x", up.port, methods=("PUT",)))
        async with running(cfg) as gw:
            r = await request(gw.port, "DELETE", "/x")
            assert r.status == 405
            assert r.header("Allow") == "GET, PUT"
            assert r.json()["codemessage"] == "MethodNotAllowed"  # type: ignore[index]
            assert not up.seen
    finally:
        await up.close()
