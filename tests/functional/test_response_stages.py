"""Response stages through the real engine: they see the upstream's head before the client
does, and the end of every exchange of their route, proxied or answered by the gateway."""

from __future__ import annotations

from propylon.plane.chain import Chain
from propylon.plane.stage import Flow, ResponseStage
from tests.support.client import request
from tests.support.gateway import BEARER, config, route, running, token
from tests.support.upstreams import RecordingUpstream, free_port


class Recorder(ResponseStage):
    name = "recorder"

    def __init__(self) -> None:
        self.heads: list[int] = []
        self.ends: list[tuple[int, float]] = []

    def on_response(self, flow: Flow, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.heads.append(status)
        headers[:] = [h for h in headers if h[0].lower() != b"content-type"]
        flow.add_response_line(b"X-Seen-By: recorder")

    def on_end(self, flow: Flow, status: int, seconds: float) -> None:
        self.ends.append((status, seconds))


async def test_response_stages_see_heads_and_every_end() -> None:
    up = await RecordingUpstream().start()
    try:
        cfg = config(
            route("/secure", up.port, auth=BEARER),
            route("/dead", free_port()),
            route("/plain", up.port),
        )
        async with running(cfg) as gw:
            recorder = Recorder()
            for plan in gw.plans[:2]:
                plan.chain = Chain(plan.chain.stages, plan.chain.ending, (recorder,))

            r = await request(gw.port, "GET", "/secure", [("Authorization", f"Bearer {token()}")])
            assert r.status == 200
            assert r.header("X-Seen-By") == "recorder"
            assert r.header("Content-Type") is None  # dropped by the stage
            r = await request(gw.port, "GET", "/secure")  # a stage's answer: 401
            assert r.status == 401 and r.header("X-Seen-By") is None
            r = await request(gw.port, "GET", "/dead")  # the gateway's 502
            assert r.status == 502
            assert recorder.heads == [200]
            assert [status for status, _ in recorder.ends] == [200, 401, 502]
            assert all(0 <= seconds < 5 for _, seconds in recorder.ends)

            r = await request(gw.port, "GET", "/plain")  # not this route's stage
            assert r.status == 200 and r.header("X-Seen-By") is None
            assert len(recorder.ends) == 3
    finally:
        await up.close()
