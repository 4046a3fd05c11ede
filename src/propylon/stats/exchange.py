"""Cross-worker ``/stats``: each worker serves its snapshot on a unix socket in the run dir.

With ``--workers N`` the kernel spreads connections over N processes, so whichever worker gets
``GET /stats`` asks its peers. The protocol is as small as it gets: connect to
``stats-<id>.sock``, read one JSON snapshot until EOF. A peer that is dead, restarting or slow
is skipped after ``timeout`` and the report says how many workers answered.

The sockets are mode 0600 in a directory that must be ours and closed to others: a snapshot
from the socket is trusted as a worker's numbers, so nobody else may plant or read one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from propylon.stats.counters import SNAPSHOT_VERSION, GatewayStats
from propylon.stats.merge import merge_snapshots

MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
SEND_TIMEOUT = 5.0
"""A peer that connects but never reads must not hold a task open for ever."""


def socket_path(run_dir: str, worker_id: int) -> str:
    return str(Path(run_dir) / f"stats-{worker_id}.sock")


class StatsExchange:
    def __init__(self, stats: GatewayStats, run_dir: str, worker_id: int, workers: int) -> None:
        self.stats = stats
        self.run_dir = run_dir
        self.worker_id = worker_id
        self.workers = workers
        self.path = socket_path(run_dir, worker_id)
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self.extras: Callable[[], dict[str, Any]] | None = None
        """More of this worker's numbers served with the snapshot (the state store's
        health): ``merge_snapshots`` ignores them, the admin process adds them up."""

    async def start(self) -> None:
        _check_private_dir(self.run_dir)
        with contextlib.suppress(FileNotFoundError):
            # A previous worker with this id died without cleaning up.
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            # Before listen(): nobody can connect while the mode is still the umask's.
            os.chmod(self.path, 0o600)
            self._inode = os.lstat(self.path).st_ino
            sock.listen(64)
            sock.setblocking(False)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        with contextlib.suppress(FileNotFoundError):
            # Only our own socket: a replacement worker may already have bound this path.
            if os.lstat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            snapshot = self.stats.snapshot()
            if self.extras is not None:
                snapshot.update(self.extras())
            writer.write(orjson.dumps(snapshot))
            async with asyncio.timeout(SEND_TIMEOUT):
                await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def collect(self, timeout: float = 1.0) -> dict[str, Any]:
        """This worker's snapshot merged with every peer that answers within ``timeout``."""
        own = self.stats.snapshot()
        peers = [i for i in range(self.workers) if i != self.worker_id]
        answers = await asyncio.gather(
            *(fetch_snapshot(socket_path(self.run_dir, i), timeout) for i in peers)
        )
        return merge_snapshots([own, *(a for a in answers if a is not None)])


async def fetch_snapshot(path: str, timeout: float) -> dict[str, Any] | None:
    """One peer's snapshot, or None when it cannot give a sound one in time."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(path)
            data = await reader.read(MAX_SNAPSHOT_BYTES + 1)
            while data and len(data) <= MAX_SNAPSHOT_BYTES:
                more = await reader.read(MAX_SNAPSHOT_BYTES + 1 - len(data))
                if not more:
                    break
                data += more
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
    if len(data) > MAX_SNAPSHOT_BYTES:
        return None
    try:
        snapshot = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(snapshot, dict) or snapshot.get("version") != SNAPSHOT_VERSION:
        return None
    try:
        # One broken peer must cost only its own numbers, not the whole report.
        merge_snapshots([snapshot])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return snapshot


def _check_private_dir(run_dir: str) -> None:
    info = os.stat(run_dir)
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(
            f"{run_dir}: the stats run directory must be owned by this user and not writable "
            "by group or others"
        )
