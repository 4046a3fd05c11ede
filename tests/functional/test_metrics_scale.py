"""`GET /metrics` at the size issue #14 names: 200 routes, 2 workers, every route with traffic
(so every histogram has buckets), scraped from a real `propylon run --admin` process. The
issue's target is < 100 ms; under a shared CI machine this asserts < 1 s and prints what it
measured (docs/performance.md has the number from a quiet machine)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import request
from tests.support.processes import gateway_process
from tests.support.upstreams import RecordingUpstream, free_port

ROUTES = 200


def _config(tmp: Path, upstream: int) -> Path:
    routes = [
        {
            "UpstreamPathTemplate": f"/svc{n}/{{everything}}",
            "UpstreamHttpMethod": ["Get"],
            "DownstreamPathTemplate": "/{everything}",
            "DownstreamScheme": "http",
            "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream}],
        }
        for n in range(ROUTES)
    ]
    path = tmp / "ocelot.json"
    path.write_text(json.dumps({"Routes": routes}))
    return path


async def _timed(session: aiohttp.ClientSession, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    async with session.get(url) as r:
        assert r.status == 200
        text = await r.text()
    return time.perf_counter() - started, text


async def test_metrics_with_200_routes_and_2_workers_is_quick_and_parses(tmp_path: Path) -> None:
    upstream = await RecordingUpstream().start()
    port, admin = free_port(), free_port()
    try:
        with gateway_process(
            _config(tmp_path, upstream.port), port, 2, args=("--admin", f"127.0.0.1:{admin}")
        ):
            for n in range(ROUTES):
                assert (await request(port, "GET", f"/svc{n}/x")).status == 200
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 10
                while True:  # both workers reporting (the second may still be binding)
                    _s, text = await _timed(session, f"http://127.0.0.1:{admin}/metrics")
                    if "propylon_workers_reporting 2.0" in text or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.1)
                metrics = [
                    await _timed(session, f"http://127.0.0.1:{admin}/metrics") for _ in range(7)
                ]
                board = [
                    await _timed(session, f"http://127.0.0.1:{admin}/dashboard.json")
                    for _ in range(7)
                ]
    finally:
        await upstream.close()

    text = metrics[-1][1]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["propylon_workers_reporting"].samples[0].value == 2
    requests = families["propylon_route_requests"]
    assert len([s for s in requests.samples if s.name.endswith("_total")]) == ROUTES
    assert sum(s.value for s in requests.samples if s.name.endswith("_total")) == ROUTES
    buckets = [s for s in families["propylon_route_duration_seconds"].samples if "le" in s.labels]
    assert len(buckets) == ROUTES * 15  # 14 bounds and +Inf per route
    assert len(json.loads(board[-1][1])["routes"]) == ROUTES

    median = statistics.median(seconds for seconds, _ in metrics)
    board_median = statistics.median(seconds for seconds, _ in board)
    print(
        f"\n/metrics, {ROUTES} routes, 2 workers: median {median * 1000:.1f} ms, "
        f"{len(text)} bytes; /dashboard.json: median {board_median * 1000:.1f} ms"
    )
    assert median < 1.0 and board_median < 1.0
