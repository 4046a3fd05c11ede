"""Records shared by the workers of one gateway: a fixed table in a memory-mapped file.

``--workers N`` forks N processes; a limit of 100 per window must admit 100 for the gateway,
not 100 per worker. Each worker maps the same file in the gateway's private run directory
(``MAP_SHARED``: one copy in the page cache, no I/O on the request path) and takes a POSIX
record lock (``fcntl``) on the bucket it touches, so workers only wait for each other when
they touch the same bucket at the same moment. The kernel drops a dead worker's locks, so a
crash never wedges the others. Cost per decision: one lock and one unlock system call per
bucket (about 0.5 us) and two ``struct`` reads and a write; docs/performance.md has the
measured figure.

Bounded by construction: ``max_keys`` slots, grouped in buckets of ``WAYS``; a key lives in
the bucket its hash names. A new key takes an empty or expired slot of its bucket, else
the slot that expires first (that key starts afresh: under a flood of distinct keys the
counters that are evicted are those closest to ending anyway).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from hashlib import blake2b
from typing import Final

from propylon.state.store import RECORD_WIDTH, StateStore, Transition

WAYS: Final = 8
SLOT: Final = struct.Struct("<Q" + "d" * RECORD_WIDTH)
"""A slot: the key's 64-bit hash (0: empty), then the record."""
BUCKET_BYTES: Final = SLOT.size * WAYS
HEADER: Final = struct.Struct("<8sIII")
HEADER_BYTES: Final = 64
MAGIC: Final = b"PRPLST01"
# One unpack reads the hash and the expiry of every slot of a bucket.
INDEX: Final = struct.Struct("<" + ("Qd" + "x" * (SLOT.size - 16)) * WAYS)


class SharedStore(StateStore):
    __slots__ = ("buckets", "fd", "map", "path")

    kind = "workers"

    def __init__(self, run_dir: str, max_keys: int, name: str = "state") -> None:
        super().__init__()
        self.buckets = max(1, -(-max_keys // WAYS))
        size = HEADER_BYTES + self.buckets * BUCKET_BYTES
        self.path = os.path.join(run_dir, f"{name}-{self.buckets}x{WAYS}.bin")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, HEADER_BYTES, 0)
            try:
                header = os.pread(fd, HEADER.size, 0)
                if len(header) < HEADER.size or header[:8] != MAGIC:
                    # The first worker here: size the table (zeros are empty slots).
                    os.ftruncate(fd, size)
                    os.pwrite(fd, HEADER.pack(MAGIC, 1, self.buckets, WAYS), 0)
                elif HEADER.unpack(header)[2:] != (self.buckets, WAYS):
                    raise OSError(f"{self.path} holds a table of another shape")
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, HEADER_BYTES, 0)
            self.map: mmap.mmap | None = mmap.mmap(fd, size, mmap.MAP_SHARED)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def run(self, transition: Transition, keys: list[bytes], now: float) -> list[float]:
        table = self.map
        if table is None:
            raise RuntimeError("the shared state table is closed")
        hashes: list[int] = []
        for key in keys:
            # 0 marks an empty slot, so a hash of 0 becomes 1
            value = int.from_bytes(blake2b(key, digest_size=8).digest(), "little")
            hashes.append(value or 1)
        buckets = sorted({value % self.buckets for value in hashes})
        fd = self.fd
        for bucket in buckets:  # in one order for everyone: no two workers deadlock
            fcntl.lockf(fd, fcntl.LOCK_EX, BUCKET_BYTES, HEADER_BYTES + bucket * BUCKET_BYTES)
        try:
            offsets: list[int] = []
            held: list[list[float]] = []
            for value in hashes:
                offset = self._slot(table, value, now, offsets)
                offsets.append(offset)
                fields = SLOT.unpack_from(table, offset)
                if fields[0] == value and fields[1] > now:
                    held.append(list(fields[1:]))
                else:
                    held.append([0.0] * RECORD_WIDTH)
            result = transition.apply(held, now)
            # Indexing, not zip(..., strict=True) (a call mypyc does not compile).
            for index, value in enumerate(hashes):
                offset = offsets[index]
                record = held[index]
                if record[0] > now:
                    SLOT.pack_into(table, offset, value, *record)
                else:
                    SLOT.pack_into(table, offset, 0, *([0.0] * RECORD_WIDTH))
        finally:
            for bucket in buckets:
                fcntl.lockf(fd, fcntl.LOCK_UN, BUCKET_BYTES, HEADER_BYTES + bucket * BUCKET_BYTES)
        return result

    def _slot(self, table: mmap.mmap, value: int, now: float, taken: list[int]) -> int:
        """The offset of ``value``'s slot in its bucket: its own, else a free or expired
        one, else the one that expires first; never one in ``taken`` (chosen for another key
        of the same decision)."""
        start = HEADER_BYTES + (value % self.buckets) * BUCKET_BYTES
        index = INDEX.unpack_from(table, start)
        victim = 0
        soonest = float("inf")
        for way in range(WAYS):
            tag = index[2 * way]
            if tag == value:
                return start + way * SLOT.size
            if start + way * SLOT.size in taken:
                continue
            expires = index[2 * way + 1]
            if tag == 0 or expires <= now:
                expires = float("-inf")
            if expires < soonest:
                soonest = expires
                victim = way
        return start + victim * SLOT.size

    def __len__(self) -> int:
        """Occupied slots (for tests and diagnostics; reads the table without locks)."""
        table = self.map
        if table is None:
            return 0
        count = 0
        for bucket in range(self.buckets):
            index = INDEX.unpack_from(table, HEADER_BYTES + bucket * BUCKET_BYTES)
            count += sum(1 for way in range(WAYS) if index[2 * way] != 0)
        return count

    async def close(self) -> None:
        table = self.map
        if table is None:
            return
        self.map = None
        table.close()
        os.close(self.fd)
