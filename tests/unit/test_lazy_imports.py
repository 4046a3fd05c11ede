"""A worker loads what its config uses, and no more: aiohttp (JWKS fetching, active health
checks, the admin listener), redis, prometheus-client and the OpenTelemetry SDK (span
export) cost ~10 MiB of RSS per worker each, so a gateway that configures none of them must
not import them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, json, sys
from propylon.cli import main  # noqa: F401  (what `propylon run` imports)
from propylon.config.loader import load_config
from propylon.engine.gateway import Gateway
from propylon.engine import runner  # noqa: F401

async def serve():
    gateway = Gateway(load_config(sys.argv[1], env={"PROPYLON_JWT_SECRET": "x" * 32}))
    await gateway.start("127.0.0.1", 0)
    await gateway.stop(drain_timeout=0.1)

asyncio.run(serve())
heavy = ("aiohttp", "redis", "prometheus_client", "opentelemetry", "urllib3")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_a_plain_gateway_imports_no_http_client_redis_metrics_or_tracing_library(
    tmp_path: Path,
) -> None:
    config = tmp_path / "ocelot.json"
    route = {
        "UpstreamPathTemplate": "/a/{id}",
        "DownstreamPathTemplate": "/a/{id}",
        "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": 9}],
        "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
        "RateLimitOptions": {"ClientWhitelist": [], "Period": "1s", "Limit": 5},
        "QoSOptions": {"ExceptionsAllowedBeforeBreaking": 3, "DurationOfBreak": 1000},
    }
    config.write_text(json.dumps({"Routes": [route]}))
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
