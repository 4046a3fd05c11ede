"""The login and registration throttle against a real identity service: atomic under
concurrency, keyed by client as well as username, no lockout switch for an attacker,
bounded hashing, and (with PROPYLON_TEST_REDIS_URL) shared by replicas through Redis."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from identity.app import create_app
from identity.throttle import LoginPolicy, MemoryStore, Rule
from servicekit.serving import ServiceThread

from tests.services.client import Reply, ServiceClient
from tests.services.conftest import identity_settings
from tests.services.redis_store import STORES, store_settings
from tests.support.upstreams import free_port

PASSWORD = "the owner's password"


@contextmanager
def identity_with(tmp_path: Path, store: str, **overrides: object) -> Iterator[ServiceClient]:
    with store_settings(store) as chosen:
        settings = identity_settings(
            f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}",
            tmp_path / "keys",
            **{**chosen, **overrides},
        )
        with ServiceThread(create_app(settings)) as service:
            yield ServiceClient(service.url)


def guess(
    identity: ServiceClient, name: str, password: str = "a wrong guess", client: str | None = None
) -> Reply:
    headers = {"X-Forwarded-For": client} if client else None
    return identity.post("/auth/token", {"username": name, "password": password}, headers=headers)


def register(identity: ServiceClient, name: str, client: str | None = None) -> Reply:
    headers = {"X-Forwarded-For": client} if client else None
    return identity.post("/auth/users", {"username": name, "password": PASSWORD}, headers=headers)


def fresh() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def concurrently(count: int, call: object) -> list[Reply]:
    """`count` calls released together (a barrier), each on its own connection."""
    barrier = threading.Barrier(count, timeout=30)

    def one(_index: int) -> Reply:
        barrier.wait()
        return call()  # type: ignore[operator]

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count), timeout=120))


@pytest.mark.parametrize("store", STORES)
def test_concurrent_guesses_are_counted_before_they_are_checked(store: str, tmp_path: Path) -> None:
    # Before: each guess checked the throttle, hashed, then counted; 20 at once all passed
    # the check, so all 20 were tried although the limit was 5.
    with identity_with(
        tmp_path, store, login_max_failures=5, login_base_delay_seconds=60, hash_queue=64
    ) as identity:
        name = fresh()
        replies = concurrently(20, lambda: guess(identity, name))
    statuses = sorted(r.status for r in replies)
    assert statuses == [401] * 5 + [429] * 15, statuses
    refused = next(r for r in replies if r.status == 429)
    assert refused.envelope == (429, 410, "LoginThrottled")
    assert 50 < int(refused.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("store", STORES)
def test_one_client_spraying_many_usernames_is_slowed(store: str, tmp_path: Path) -> None:
    # Before: the count was per username only, so one guess on each of 30 names never slowed.
    with identity_with(tmp_path, store, login_client_max_failures=10) as identity:
        statuses = [guess(identity, fresh()).status for _ in range(14)]
        elsewhere = guess(identity, fresh(), client="203.0.113.5")
    assert statuses == [401] * 10 + [429] * 4
    assert elsewhere.status == 401  # another client is not slowed by this one


@pytest.mark.parametrize("store", STORES)
def test_an_attacker_cannot_lock_the_owner_out(store: str, tmp_path: Path) -> None:
    # Before: 5 bad tries by anyone blocked the right password for 300 s.
    with identity_with(
        tmp_path,
        store,
        login_max_failures=3,
        login_user_max_failures=6,
        login_user_max_delay_seconds=2,
    ) as identity:
        owner = fresh()
        assert register(identity, owner).status == 201
        attacker = [guess(identity, owner, client="198.51.100.1").status for _ in range(5)]
        assert attacker == [401, 401, 401, 429, 429]
        assert guess(identity, owner, PASSWORD, client="203.0.113.9").status == 200

        # Many clients, one guess each: the per-username cap slows everyone down a little.
        for index in range(12):
            guess(identity, owner, client=f"198.51.100.{10 + index}")
        slowed = guess(identity, owner, PASSWORD, client="203.0.113.9")
        assert slowed.envelope == (429, 410, "LoginThrottled")
        wait = int(slowed.headers["Retry-After"])
        assert 1 <= wait <= 2  # login_user_max_delay_seconds: slowed, never locked out
        time.sleep(wait + 0.1)
        assert guess(identity, owner, PASSWORD, client="203.0.113.9").status == 200


def test_delays_double_per_username_and_client(tmp_path: Path) -> None:
    with identity_with(tmp_path, "memory", login_max_failures=1) as identity:
        name = fresh()
        assert guess(identity, name).status == 401
        first = guess(identity, name)
        assert (first.status, first.headers["Retry-After"]) == (429, "1")
        time.sleep(1.1)
        assert guess(identity, name).status == 401
        second = guess(identity, name)
        assert (second.status, second.headers["Retry-After"]) == (429, "2")


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    with identity_with(tmp_path, "memory", login_max_failures=3, trusted_proxies=()) as identity:
        name = fresh()
        # A client that is no trusted proxy claims a new address each time: no fresh quota.
        statuses = [guess(identity, name, client=f"192.0.2.{i}").status for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.parametrize("store", STORES)
def test_registration_is_limited_per_client(store: str, tmp_path: Path) -> None:
    with identity_with(
        tmp_path, store, register_max_per_window=3, register_window_seconds=600
    ) as identity:
        statuses = [register(identity, fresh()).status for _ in range(3)]
        refused = register(identity, fresh())
        elsewhere = register(identity, fresh(), client="203.0.113.77")
    assert statuses == [201, 201, 201]
    assert refused.envelope == (429, 411, "RegistrationThrottled")
    assert 590 <= int(refused.headers["Retry-After"]) <= 600
    assert elsewhere.status == 201


def test_concurrent_hashing_is_bounded_and_the_rest_told_to_retry(tmp_path: Path) -> None:
    # Before: 40 concurrent logins for unknown users each ran argon2 at once (1 GiB, 5.8 s).
    with identity_with(
        tmp_path,
        "memory",
        argon2_time_cost=3,
        argon2_memory_kib=32768,
        hash_concurrency=1,
        hash_queue=1,
    ) as identity:
        replies = concurrently(10, lambda: guess(identity, fresh()))
        busy = [r for r in replies if r.status == 503]
        checked = [r for r in replies if r.status == 401]
        after = guess(identity, fresh())
    assert len(busy) + len(checked) == 10
    assert busy, [r.status for r in replies]
    assert len(checked) >= 2  # the one hashing and the one queued behind it
    assert busy[0].envelope == (503, 510, "ServiceBusy")
    assert busy[0].headers["Retry-After"] == "1"
    assert after.status == 401  # the gate is open again


def test_replicas_share_the_throttle_through_redis(tmp_path: Path) -> None:
    with store_settings("redis") as chosen:
        common = {**chosen, "login_max_failures": 3, "login_base_delay_seconds": 60}
        first = identity_settings(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a", **common)
        second = identity_settings(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b", **common)
        with ServiceThread(create_app(first)) as one, ServiceThread(create_app(second)) as two:
            name = fresh()
            on_one = [guess(ServiceClient(one.url), name).status for _ in range(3)]
            on_two = guess(ServiceClient(two.url), name)
    assert on_one == [401, 401, 401]
    assert on_two.envelope == (429, 410, "LoginThrottled")


def test_an_unreachable_redis_fails_closed_and_is_not_ready(tmp_path: Path) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings = identity_settings(
        f"sqlite:///{tmp_path / 'i.db'}", tmp_path / "keys", redis_url=closed
    )
    with ServiceThread(create_app(settings)) as service:
        identity = ServiceClient(service.url)
        login = guess(identity, fresh())
        health = identity.get("/healthz")
    assert login.envelope == (503, 511, "NotReady")
    assert health.envelope == (503, 511, "NotReady")
    assert "throttle store (Redis)" in health.json["message"]


def test_the_memory_store_stays_bounded() -> None:
    store = MemoryStore(max_tracked=100)
    policy = LoginPolicy(Rule(5, 60), Rule(30, 60), Rule(100, 5), base_delay=1, memory=600)

    async def spray() -> None:
        for i in range(1000):
            await store.admit((f"pair:{i}", f"client:{i}", f"user:{i}"), policy, now=1000.0)

    asyncio.run(spray())
    assert len(store) <= 100
