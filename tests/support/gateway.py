"""Start a real gateway (in this test's event loop, on a real loopback socket)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import jwt

from propylon.config.model import (
    AuthRequirement,
    ConfigFormat,
    DownstreamHost,
    GatewayConfig,
    JwtProviderSpec,
    Limits,
    RouteSpec,
)
from propylon.engine.gateway import Gateway

SECRET = b"test-secret-0123456789abcdef0123456789"


def route(
    upstream_path: str,
    port: int,
    downstream_path: str | None = None,
    *,
    methods: tuple[str, ...] = (),
    auth: AuthRequirement | None = None,
    source: str = "routes[0]",
    **kw: Any,
) -> RouteSpec:
    return RouteSpec(
        source=source,
        upstream_path=upstream_path,
        downstream_hosts=(DownstreamHost("127.0.0.1", port),),
        methods=frozenset(methods),
        downstream_path=downstream_path if downstream_path is not None else upstream_path,
        auth=auth,
        **kw,
    )


BEARER = AuthRequirement(providers=("Bearer",))


def config(*routes: RouteSpec, limits: Limits | None = None, **kw: Any) -> GatewayConfig:
    numbered = tuple(
        replace(r, source=f"routes[{i}]") if r.source == "routes[0]" else r
        for i, r in enumerate(routes)
    )
    providers = {"Bearer": JwtProviderSpec(name="Bearer", algorithms=("HS256",), secret=SECRET)}
    return GatewayConfig(
        source="test",
        format=ConfigFormat.NATIVE,
        routes=numbered,
        providers=MappingProxyType(providers),
        limits=limits or Limits(),
        **kw,
    )


def token(sub: str = "alice", *, ttl: float = 300, key: bytes = SECRET, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + int(ttl), **claims}
    return jwt.encode(payload, key, algorithm="HS256")


@asynccontextmanager
async def running(cfg: GatewayConfig, host: str = "127.0.0.1") -> AsyncIterator[Gateway]:
    gateway = Gateway(cfg)
    await gateway.start(host, 0)
    try:
        yield gateway
    finally:
        await gateway.stop(drain_timeout=1.0)
