"""The admin process: the supervisor forks it beside the workers, hands it the listening
socket it bound, and stops it after the last worker has drained (so ``/readyz`` answers 503
for the whole drain rather than going silent).

Its own process rather than a thread of a worker or of the supervisor: a scrape's CPU time
(rendering a few hundred series) is then spent where no proxied request waits for the GIL,
and the supervisor stays a single-threaded process that can fork replacement workers safely.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from aiohttp import web

from propylon.admin.app import AdminContext, build_app
from propylon.admin.reloads import ReloadControl
from propylon.admin.workers import WorkerGroup
from propylon.config.model import GatewayConfig
from propylon.config.source import ConfigSource

log = logging.getLogger("propylon.admin")


def public_keys(config: GatewayConfig) -> dict[str, object] | None:
    if config.assertion is None:
        return None
    from propylon.auth.assertion import signer_for

    return signer_for(config.assertion).jwks()


def run_admin(
    config: GatewayConfig,
    sock: socket.socket,
    run_dir: str,
    workers: int,
    source: ConfigSource | None = None,
) -> int:
    # Ctrl-C reaches the whole process group; the supervisor decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return asyncio.run(_serve(config, sock, run_dir, workers, source))


async def _serve(
    config: GatewayConfig,
    sock: socket.socket,
    run_dir: str,
    workers: int,
    source: ConfigSource | None,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reloads = ReloadControl(run_dir, workers, config, source, os.environ, os.getppid())
    context = AdminContext(config, WorkerGroup(run_dir, workers), public_keys(config), reloads)
    runner = web.AppRunner(build_app(context), access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    await stop.wait()
    await runner.cleanup()
    return 0
