"""Whole lines to a file or standard output, without a write per request.

The loop only appends a line to a list. Every ``FLUSH_INTERVAL`` (and whenever
``HANDOFF_BYTES`` have gathered, about 250 lines) the list is joined and written in one
``os.write``, off the request path (nginx's ``access_log ... buffer=64k flush=...``):

- to a regular file, by the loop itself: a write to the page cache does not wait for the
  disk, and a thread would cost a GIL hand-over per write for nothing;
- to anything else (``-`` under a process manager: a pipe, a socket, a terminal), by a
  writer thread of this worker, since a reader that stops reading would block the write:
  that holds up the thread, never a request. Beyond ``MAX_QUEUED_BYTES`` waiting for it,
  lines are dropped and counted rather than held.

``close`` writes what is left (and waits for the thread): a drained worker exits with every
line it produced written.

Several workers may share one file: it is opened ``O_APPEND`` and every write is whole
lines, so lines never interleave (Linux writes to a regular file one ``write`` at a time).
On a pipe or socket a write is atomic only up to ``PIPE_BUF`` bytes, so there writes are
cut at line boundaries below that size.

``reopen`` (SIGUSR1, logrotate's convention) comes after the lines gathered so far: they
go to the old file, everything after to the new one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import stat
import threading
from collections.abc import Callable
from queue import SimpleQueue

log = logging.getLogger("propylon.access")

STDOUT = "-"
FLUSH_INTERVAL = 0.2
HANDOFF_BYTES = 64 * 1024
MAX_QUEUED_BYTES = 64 * 1024 * 1024
"""Beyond this much handed over but not yet written (the disk or the reader has stalled),
new lines are dropped and counted rather than held: memory stays bounded."""
_REOPEN = b"\x00reopen"
_STOP = b"\x00stop"


class LineWriter:
    def __init__(self, path: str, *, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self._fd = self._open()
        self._atomic = self._atomic_size(self._fd)
        self._threaded = not stat.S_ISREG(os.fstat(self._fd).st_mode)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._queue: SimpleQueue[bytes] = SimpleQueue()
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_tick: Callable[[], None] | None = None
        self._writer_thread: threading.Thread | None = None
        if self._threaded:
            self._writer_thread = threading.Thread(target=self._run, name="access-log", daemon=True)
            self._writer_thread.start()
        self.dropped = 0
        """Lines not written: dropped while the writer was stalled, or refused by the OS."""
        self._closed = False

    # -- the loop's side ----------------------------------------------------------------------
    def start(
        self, loop: asyncio.AbstractEventLoop, on_tick: Callable[[], None] | None = None
    ) -> None:
        """Flush every ``flush_interval`` from now on (``on_tick``: called at each)."""
        self._loop = loop
        self._on_tick = on_tick
        self._timer = loop.call_later(self.flush_interval, self._tick)

    def write(self, line: bytes) -> None:
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= HANDOFF_BYTES:
            self._hand_over()

    def _tick(self) -> None:
        self._hand_over()
        if self._on_tick is not None:
            self._on_tick()
        if self._loop is not None and not self._closed:
            self._timer = self._loop.call_later(self.flush_interval, self._tick)

    def _hand_over(self) -> None:
        pending = self._pending
        if not pending:
            return
        size = self._pending_bytes
        self._pending = []
        self._pending_bytes = 0
        if not self._threaded:
            self._write_all(b"".join(pending))
            return
        with self._lock:
            if self._queued_bytes + size > MAX_QUEUED_BYTES:
                stalled = True
            else:
                stalled = False
                self._queued_bytes += size
        if stalled:
            self._drop(len(pending), "the access log's writer is stalled")
            return
        self._queue.put(b"".join(pending))

    def reopen(self) -> None:
        """Close and open the path again (after logrotate moved the file)."""
        self._hand_over()
        if self._threaded:
            self._queue.put(_REOPEN)
        else:
            self._reopen()

    def close(self, timeout: float = 10.0) -> None:
        """Write everything handed in so far, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._hand_over()
        thread = self._writer_thread
        if thread is None:
            if self.path != STDOUT:
                os.close(self._fd)
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.error("the access log's writer did not finish within %.0f s", timeout)

    # -- the writing (the writer thread's, or the loop's for a regular file) ------------------
    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is _STOP:
                if self.path != STDOUT:
                    os.close(self._fd)
                return
            if chunk is _REOPEN:
                self._reopen()
                continue
            self._write_all(chunk)
            with self._lock:
                self._queued_bytes -= len(chunk)

    def _reopen(self) -> None:
        if self.path == STDOUT:
            return
        try:
            fd = self._open()
        except OSError as exc:
            # Keep writing to the old file: losing lines is worse than a missed rotation.
            log.error("cannot reopen the access log %s: %s", self.path, exc.strerror or exc)
            return
        os.close(self._fd)
        self._fd = fd
        self._atomic = self._atomic_size(fd)

    def _write_all(self, chunk: bytes) -> None:
        atomic = self._atomic
        view = memoryview(chunk)
        start, end = 0, len(chunk)
        while start < end:
            stop = end
            if atomic and end - start > atomic:
                # The last whole line within PIPE_BUF; a longer single line goes alone.
                cut = chunk.rfind(b"\n", start, start + atomic)
                if cut < 0:
                    cut = chunk.find(b"\n", start)
                stop = cut + 1 if cut >= 0 else end
            try:
                written = os.write(self._fd, view[start:stop])
            except InterruptedError:
                continue
            except OSError as exc:
                self._drop(chunk.count(b"\n", start), f"cannot write: {exc.strerror or exc}")
                return
            start += written

    def _drop(self, lines: int, why: str) -> None:
        if not self.dropped:
            log.error("access log %s: %s; lines are being dropped", self.path, why)
        self.dropped += lines

    def _open(self) -> int:
        if self.path == STDOUT:
            return 1
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    @staticmethod
    def _atomic_size(fd: int) -> int:
        """0 for a regular file (a write is never split among writers); PIPE_BUF for a pipe
        or socket."""
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            return select.PIPE_BUF
        return 0
