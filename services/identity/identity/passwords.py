"""Password hashing (argon2id), the constant-work check that hides unknown usernames, and
the gate that bounds how many hashes run at once.

Each argon2 computation holds `memory_kib` of memory (64 MiB by default) for tens of
milliseconds: 40 concurrent logins once took identity to 1 GiB. Requests therefore pass
through a `HashingGate`: a few computations at a time, a bounded queue behind them, and a
503 `ServiceBusy` (with `Retry-After`) once the queue is full.
"""

from __future__ import annotations

import asyncio
import secrets

import anyio.to_thread
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from servicekit import ResponseCode, ServiceError


class HashingBusy(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            503,
            ResponseCode.ServiceBusy,
            "The service is busy checking passwords; try again shortly.",
            headers={"Retry-After": "1"},
        )


class HashingGate:
    """At most `concurrency` holders, at most `queue` waiters; nobody else gets in."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self._semaphore: asyncio.Semaphore | None = None
        self._waiting = 0

    def _lazy_semaphore(self) -> asyncio.Semaphore:
        # Created on first use, inside the server's event loop.
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    async def __aenter__(self) -> None:
        semaphore = self._lazy_semaphore()
        if semaphore.locked():
            if self._waiting >= self.queue:
                raise HashingBusy()
            self._waiting += 1
            try:
                await semaphore.acquire()
            finally:
                self._waiting -= 1
        else:
            await semaphore.acquire()

    async def __aexit__(self, *_exc: object) -> None:
        self._lazy_semaphore().release()


class PasswordVault:
    def __init__(
        self, time_cost: int, memory_kib: int, parallelism: int, gate: HashingGate | None = None
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self.gate = gate or HashingGate(2, 16)
        # Verified against when the username is unknown, so a miss costs the same argon2 work
        # as a wrong password and response times do not reveal which usernames exist.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, password) and (
                stored_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    # What request handlers use: the same work, through the gate, off the event loop.

    async def hash_async(self, password: str) -> str:
        async with self.gate:
            return await anyio.to_thread.run_sync(self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        async with self.gate:
            return await anyio.to_thread.run_sync(self.verify, stored_hash, password)
