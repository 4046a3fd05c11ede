"""Hot reload between processes: who validates, what the workers are handed, what is recorded.

``SIGHUP`` to the supervisor (or ``POST /reload`` on the admin listener, which sends it) makes
the supervisor read the config file once and validate it completely, with the same loader
and flags as ``propylon run`` (``config/source.py``). Only when that succeeds does anything
change: the supervisor writes the validated text to ``config.snapshot`` in the run directory
(atomically), then signals every worker. A worker compiles that snapshot, never the file,
so every worker serves the same version even if the file changed again meanwhile; the
snapshot's sha256 names the version, and each worker acknowledges it in ``reload-<id>``.

``reload.json`` in the run directory is the one record of reloads: the last attempt's
outcome, its problems (as ``propylon check`` prints them, key paths included), what it
changed and what needs a restart, counts of successes and failures, and when the last one
succeeded. The admin process reads it for ``POST /reload``, ``/readyz`` and ``/metrics``
(and the dashboard for its "last reload"). Small JSON, rewritten whole: a reader never sees
half of it.

With one worker and no admin listener there is no supervisor: the worker validates and
applies for itself, and the log is the only record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from propylon.config.changes import Changes, applied, diff
from propylon.config.model import ConfigError, GatewayConfig
from propylon.config.source import ConfigSource, Loaded

if TYPE_CHECKING:
    from propylon.engine.gateway import Gateway

log = logging.getLogger("propylon.reload")

RECORD = "reload.json"
SNAPSHOT = "config.snapshot"


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        data = orjson.loads(path.read_bytes())
        if isinstance(data, dict):
            return data
    return None


def read_record(run_dir: str) -> dict[str, Any]:
    """The reload record; before any reload, one that says so (``seq`` 0)."""
    return _read_json(Path(run_dir) / RECORD) or empty_record()


def empty_record() -> dict[str, Any]:
    return {
        "seq": 0,
        "result": None,
        "at": None,
        "digest": None,
        "problems": [],
        "added": [],
        "removed": [],
        "modified": [],
        "needs_restart": [],
        "successes": 0,
        "failures": 0,
        "last_success_at": None,
        "last_error": None,
    }


def read_snapshot(run_dir: str) -> tuple[str, str] | None:
    """(digest, text) of the config the workers are to serve, or None."""
    path = Path(run_dir) / SNAPSHOT
    try:
        data = orjson.loads(path.read_bytes())
        return str(data["digest"]), str(data["text"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return None


def write_snapshot(run_dir: str, loaded: Loaded) -> None:
    _write(Path(run_dir) / SNAPSHOT, orjson.dumps({"digest": loaded.digest, "text": loaded.text}))


def acknowledge(run_dir: str, worker_id: int, digest: str, error: str | None) -> None:
    """A worker's word on the version it serves (and why not the latest, if it could not)."""
    record = {"pid": os.getpid(), "digest": digest, "error": error}
    _write(Path(run_dir) / f"reload-{worker_id}", orjson.dumps(record))


def acknowledgements(run_dir: str, workers: int) -> list[dict[str, Any]]:
    found = []
    for worker_id in range(workers):
        ack = _read_json(Path(run_dir) / f"reload-{worker_id}") or {}
        found.append({"worker": worker_id, "digest": ack.get("digest"), "error": ack.get("error")})
    return found


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    config: GatewayConfig
    """What to serve now: the new config (less what needs a restart), or the old one."""
    digest: str
    changes: Changes
    problems: tuple[str, ...] = ()


class Reloader:
    """The supervisor's (or a lone worker's) side: validate, compare, record."""

    def __init__(
        self,
        source: ConfigSource,
        config: GatewayConfig,
        digest: str,
        env: Mapping[str, str],
        run_dir: str | None = None,
        *,
        clock: Any = time.time,
    ) -> None:
        self.source = source
        self.config = config
        self.digest = digest
        self.env = env
        self.run_dir = run_dir
        self.clock = clock
        self.record = empty_record()
        if run_dir is not None:
            self._save()

    def start(self, text: str) -> None:
        """Hand the start-up text to the workers too: one restarted after a crash compiles
        the current version, whatever the file says by then."""
        if self.run_dir is not None:
            write_snapshot(self.run_dir, Loaded(self.config, text, self.digest))

    def reload(self) -> Outcome:
        try:
            loaded = self.source.load(self.env)
        except ConfigError as exc:
            problems = tuple(str(p) for p in exc.problems if p.severity == "error")
            return self._failed(problems)
        except Exception as exc:  # a bug in a reader must not take the supervisor down
            log.exception("reading the config for a reload failed")
            return self._failed((f"{self.source.path}: cannot be read: {type(exc).__name__}",))
        changes = diff(self.config, loaded.config)
        config = applied(self.config, loaded.config)
        for line in changes.needs_restart:
            log.warning("config reload: %s (not applied)", line)
        for problem in loaded.config.warnings:
            log.warning("%s", problem)
        if loaded.digest == self.digest:
            log.info("config reload: %s unchanged", self.source.path)
        else:
            log.info("config reload: %s: %s", self.source.path, changes.summary())
            if self.run_dir is not None:
                write_snapshot(self.run_dir, Loaded(config, loaded.text, loaded.digest))
        self.config = config
        self.digest = loaded.digest
        now = self.clock()
        self.record.update(
            seq=self.record["seq"] + 1,
            result="success",
            at=now,
            digest=loaded.digest,
            problems=[],
            successes=self.record["successes"] + 1,
            last_success_at=now,
            last_error=None,
            **changes.as_dict(),
        )
        self._save()
        return Outcome(True, config, loaded.digest, changes)

    def _failed(self, problems: tuple[str, ...]) -> Outcome:
        log.error(
            "config reload failed, still serving the previous config: %s", "; ".join(problems)
        )
        self.record.update(
            seq=self.record["seq"] + 1,
            result="failure",
            at=self.clock(),
            problems=list(problems),
            failures=self.record["failures"] + 1,
            last_error="; ".join(problems),
            added=[],
            removed=[],
            modified=[],
            needs_restart=[],
        )
        self._save()
        return Outcome(False, self.config, self.digest, Changes(), problems)

    def _save(self) -> None:
        if self.run_dir is not None:
            _write(Path(self.run_dir) / RECORD, orjson.dumps(self.record))


async def apply_in_worker(
    gateway: Gateway, source: ConfigSource | None, run_dir: str | None, worker_id: int
) -> None:
    """A worker's part of a reload (on ``SIGHUP``): serve the supervisor's snapshot when it
    is a version this worker does not serve yet; with no supervisor, validate for itself."""
    current = gateway.generation.digest
    if run_dir is not None:
        snapshot = read_snapshot(run_dir)
        if snapshot is None or snapshot[0] == current:
            return
        digest, text = snapshot
        if source is None:
            return
        try:
            config = applied(gateway.config, source.compile(text, os.environ).config)
        except Exception as exc:  # the supervisor validated this text: only a file it names
            # (a key, a certificate) changing since could get here
            if isinstance(exc, ConfigError):
                error = "; ".join(str(p) for p in exc.problems if p.severity == "error")
            else:
                error = f"{type(exc).__name__}: {exc}"
            log.error("worker %d cannot serve the new config: %s", worker_id, error)
            acknowledge(run_dir, worker_id, current, error)
            return
    else:
        if source is None:
            return
        reloader = Reloader(source, gateway.config, current, os.environ)
        outcome = reloader.reload()
        if not outcome.ok or outcome.digest == current:
            return
        config, digest = outcome.config, outcome.digest
    try:
        await gateway.reload(config, digest)
    except Exception as exc:
        log.exception("worker %d could not apply the new config; still serving the old", worker_id)
        if run_dir is not None:
            acknowledge(run_dir, worker_id, current, f"cannot apply: {type(exc).__name__}: {exc}")
        return
    if run_dir is not None:
        acknowledge(run_dir, worker_id, digest, None)
    if worker_id == 0:
        count = len(config.routes)
        log.info("config reloaded: %d route%s", count, "" if count == 1 else "s")
