"""Shared state behind one interface (design.md s.7): ``StateStore`` runs a feature's
``Transition`` atomically in this process (``MemoryStore``), across the workers of one
gateway (``SharedStore``) or in Redis (``RedisStore``). ``open_store`` picks one from the
config's ``state`` section and the process model."""

from propylon.state.choose import open_store
from propylon.state.memory import MemoryStore
from propylon.state.redis_backend import RedisStore
from propylon.state.shared import SharedStore
from propylon.state.store import (
    RECORD_WIDTH,
    StateStore,
    StoreHealth,
    StoreUnavailable,
    Transition,
)

__all__ = [
    "RECORD_WIDTH",
    "MemoryStore",
    "RedisStore",
    "SharedStore",
    "StateStore",
    "StoreHealth",
    "StoreUnavailable",
    "Transition",
    "open_store",
]
