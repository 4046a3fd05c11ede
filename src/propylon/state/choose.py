"""Which store a worker uses: the config's ``state.backend``, or by the process model."""

from __future__ import annotations

import logging

from propylon.config.model import StateSpec
from propylon.state.memory import MemoryStore
from propylon.state.redis_backend import RedisStore
from propylon.state.shared import SharedStore
from propylon.state.store import StateStore

log = logging.getLogger("propylon.state")


def open_store(
    spec: StateSpec, *, workers: int, run_dir: str | None, name: str = "state"
) -> StateStore:
    """The store for one worker (called after the fork: a shared table is mapped by each
    worker, a Redis client belongs to one event loop)."""
    kind = spec.chosen(workers)
    if kind == "redis" and spec.redis_url:
        return RedisStore(
            spec.redis_url,
            prefix=spec.key_prefix,
            timeout=spec.timeout,
            failure_policy=spec.on_failure,
            max_connections=spec.redis_max_connections,
        )
    if kind == "workers" and workers > 1:
        if run_dir is not None:
            return SharedStore(run_dir, spec.max_keys, name)
        log.warning("no run directory for the workers' shared state: counters are per worker")
    return MemoryStore(spec.max_keys)
