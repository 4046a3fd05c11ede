"""``POST /reload`` and what the admin process knows of reloads (``engine/reload.py``).

The admin process does not validate anything itself: it sends ``SIGHUP`` to the supervisor
(its parent), waits (bounded) for the reload record to name a newer attempt, and, when that
attempt succeeded, for every worker to acknowledge the new version. Its own view of the
config (``/config``, ``/routes``) is the supervisor's snapshot, compiled again when the
version changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from propylon.config.changes import applied
from propylon.config.model import GatewayConfig
from propylon.config.source import ConfigSource
from propylon.engine import reload

log = logging.getLogger("propylon.admin")

WAIT = 10.0
"""How long ``POST /reload`` waits for the supervisor and then for the workers."""
POLL = 0.02


class ReloadControl:
    def __init__(
        self,
        run_dir: str,
        workers: int,
        config: GatewayConfig,
        source: ConfigSource | None,
        env: Mapping[str, str],
        supervisor: int,
        wait: float = WAIT,
    ) -> None:
        self.run_dir = run_dir
        self.workers = workers
        self.source = source
        self.env = env
        self.supervisor = supervisor
        self.wait = wait
        self._config = config
        # Forked with the config serving now: the snapshot on disk is its text.
        snapshot = reload.read_snapshot(run_dir)
        self._digest: str | None = snapshot[0] if snapshot is not None else None
        self._lock = asyncio.Lock()

    def record(self) -> dict[str, Any]:
        return reload.read_record(self.run_dir)

    def config(self) -> GatewayConfig:
        """The config the workers were last handed (the start-up one before any reload)."""
        snapshot = reload.read_snapshot(self.run_dir)
        if snapshot is None or self.source is None or snapshot[0] == self._digest:
            return self._config
        digest, text = snapshot
        try:
            self._config = applied(self._config, self.source.compile(text, self.env).config)
        except Exception:  # /config and /routes then show the previous version
            log.exception("the admin process cannot compile the config snapshot")
        self._digest = digest
        return self._config

    async def reload(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body data) of one reload: 200, 400 (the problems), 503 (timed out)."""
        if self.source is None:
            return 503, {"result": "unavailable", "problems": ["no config file to reload"]}
        async with self._lock:
            before = self.record()["seq"]
            os.kill(self.supervisor, signal.SIGHUP)
            deadline = time.monotonic() + self.wait
            record = self.record()
            while record["seq"] <= before:
                if time.monotonic() > deadline:
                    return 503, {"result": "timeout", "problems": ["the supervisor did not answer"]}
                await asyncio.sleep(POLL)
                record = self.record()
            if record["result"] != "success":
                return 400, {"result": "failure", "problems": record["problems"]}
            workers = reload.acknowledgements(self.run_dir, self.workers)
            while any(w["digest"] != record["digest"] for w in workers):
                # A worker that cannot apply it says why in its acknowledgement (shown).
                if time.monotonic() > deadline:
                    body = _success(record, workers)
                    body["result"] = "partial"
                    return 503, body
                await asyncio.sleep(POLL)
                workers = reload.acknowledgements(self.run_dir, self.workers)
            self.config()
            return 200, _success(record, workers)


def _success(record: dict[str, Any], workers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "result": "ok",
        "digest": record["digest"],
        "added": record["added"],
        "removed": record["removed"],
        "modified": record["modified"],
        "needs_restart": record["needs_restart"],
        "workers": workers,
    }
