"""Whether the workers serve: one small file per worker in the private run directory.

A worker writes ``ready-<id>`` (its pid and ``ready``) once its listeners are up, and
rewrites it as ``draining`` when SIGTERM arrives. The admin process reads them: the gateway
is ready when every worker's file says ``ready`` and names a live process, so a crashed
worker (its file left behind) or a restart still in progress reads as not ready.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

READY = "ready"
DRAINING = "draining"


def _path(run_dir: str, worker_id: int) -> Path:
    return Path(run_dir) / f"ready-{worker_id}"


def mark(run_dir: str, worker_id: int, state: str) -> None:
    """Record this worker's state (atomically: a reader never sees half a file)."""
    path = _path(run_dir, worker_id)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps({"pid": os.getpid(), "state": state}))
    os.replace(temporary, path)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    draining: bool
    reason: str | None
    workers: list[dict[str, object]] = field(default_factory=list)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_readiness(run_dir: str, workers: int) -> Readiness:
    states: list[dict[str, object]] = []
    problems: list[str] = []
    draining = False
    for worker_id in range(workers):
        state = "starting"
        with contextlib.suppress(OSError, orjson.JSONDecodeError, TypeError, KeyError):
            record = orjson.loads(_path(run_dir, worker_id).read_bytes())
            pid = int(record["pid"])
            state = str(record["state"]) if _alive(pid) else "not running"
        states.append({"worker": worker_id, "state": state})
        if state == DRAINING:
            draining = True
        if state != READY:
            problems.append(f"worker {worker_id} is {state}")
    if draining:
        return Readiness(False, True, "draining: the gateway is shutting down", states)
    if problems:
        return Readiness(False, False, "; ".join(problems), states)
    return Readiness(True, False, None, states)
