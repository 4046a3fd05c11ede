"""Plugins the plugin tests load by import path (``tests.support.plugins:...``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from propylon.plugins import Call, Plugin


class Tagging(Plugin):
    """Async: waits a moment (as a real lookup would), then tags both directions."""

    async def on_request(self, call: Call) -> None:
        await asyncio.sleep(0.01)
        caller = call.caller.subject if call.caller is not None else "anonymous"
        call.add_upstream_header("X-Tagged-For", caller)
        call.add_response_header("X-Tag", str(self.settings.get("tag", "none")))


class Raising(Plugin):
    def on_request(self, call: Call) -> None:
        raise RuntimeError("the plugin's own bug, with a secret: hunter2")


class RaisingLater(Plugin):
    async def on_request(self, call: Call) -> None:
        await asyncio.sleep(0)
        raise KeyError("hunter2")


class Blocking(Plugin):
    slow_step = 0.01

    def on_request(self, call: Call) -> None:
        time.sleep(0.05)  # what a synchronous HTTP call in a plugin does to the worker


class BadHeader(Plugin):
    def on_request(self, call: Call) -> None:
        call.add_upstream_header("User", "admin")


class ForgedAssertion(Plugin):
    def on_request(self, call: Call) -> None:
        call.add_upstream_header("x-gateway-assertion", "forged")


class ForgedTraceparent(Plugin):
    def on_request(self, call: Call) -> None:
        call.add_upstream_header(
            "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        )


class Picky(Plugin):
    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        if "level" not in settings:
            raise ValueError("level is required")


class NotAPlugin:
    pass


class Gated(Plugin):
    """Holds every request until the test opens ``gate`` (a request waiting in a stage);
    records its own closing."""

    gate: asyncio.Event | None = None
    arrived: asyncio.Event | None = None
    closed: list[str] = []

    async def on_request(self, call: Call) -> None:
        assert Gated.gate is not None and Gated.arrived is not None
        Gated.arrived.set()
        await Gated.gate.wait()
        call.add_upstream_header("X-Gated-By", str(self.settings.get("tag", "")))

    async def close(self) -> None:
        Gated.closed.append(str(self.settings.get("tag", "")))
