"""The adapter between the chain and a user plugin (``propylon.plugins``).

It builds the plugin's ``Call`` (a read-only view of the request and the caller), runs
``on_request`` (plainly, or as a coroutine the request waits for), and turns what the plugin
did into the flow's terms: upstream lines, response lines, or an envelope answer. A plugin
that raises makes its request a 500 and a log line; a step that holds the event loop longer
than the plugin's ``slow_step`` is named in a warning (rate-limited), because the worker's
other requests all waited for it.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Coroutine, Generator
from typing import Any

from propylon import errors
from propylon.auth import Principal
from propylon.plane.stage import CONTINUE, Flow, RequestStage
from propylon.plugins import Call, Caller, Plugin, PluginRefusal, RequestView

log = logging.getLogger("propylon.plugins")

SLOW_WARNING_INTERVAL = 10.0
"""At most one slow-step warning per plugin in this many seconds."""


class PluginStage(RequestStage):
    def __init__(
        self, name: str, plugin: Plugin, route_label: str, gateway_owned: frozenset[str]
    ) -> None:
        self.name = f"plugin:{name}"
        self.gateway_owned = gateway_owned
        self.plugin_name = name
        self.plugin = plugin
        self.route_label = route_label
        self.is_async = inspect.iscoroutinefunction(plugin.on_request)
        self._warned_at = -SLOW_WARNING_INTERVAL

    def on_request(self, flow: Flow) -> int:
        call = Call(_request_view(flow, self.route_label), _caller(flow.principal))
        if self.is_async:
            return flow.spawn(self._run_async(call, flow))
        started = time.perf_counter()
        try:
            self.plugin.on_request(call)
        except PluginRefusal:
            pass
        except Exception:
            log.exception("plugin %s failed on route %s", self.plugin_name, self.route_label)
            return flow.refuse(errors.INTERNAL)
        finally:
            self._judge_step(time.perf_counter() - started)
        return self._apply(call, flow)

    async def _run_async(self, call: Call, flow: Flow) -> int:
        try:
            await _TimedSteps(self.plugin.on_request(call), self._judge_step)
        except PluginRefusal:
            pass
        except Exception:
            log.exception("plugin %s failed on route %s", self.plugin_name, self.route_label)
            return flow.refuse(errors.INTERNAL)
        return self._apply(call, flow)

    def _apply(self, call: Call, flow: Flow) -> int:
        for name, value in call._response:
            flow.add_response_line(f"{name}: {value}".encode("latin-1"))
        refusal = call._refusal
        if refusal is not None:
            status, message = refusal
            base = errors.PLUGIN_REFUSED
            return flow.refuse(errors.ErrorKind(status, base.code, base.codemessage, message))
        for name, _value in call._upstream:
            if name.lower() in self.gateway_owned:
                # A second identity line (or a forged claim header) would be believed by the
                # service: a plugin bug, answered like one.
                log.error(
                    "plugin %s tried to set %s upstream on route %s: only the gateway sets it",
                    self.plugin_name,
                    name,
                    self.route_label,
                )
                return flow.refuse(errors.INTERNAL)
        for name, value in call._upstream:
            flow.add_upstream_line(f"{name}: {value}".encode("latin-1"))
        return CONTINUE

    def _judge_step(self, seconds: float) -> None:
        if seconds <= self.plugin.slow_step:
            return
        now = time.monotonic()
        if now - self._warned_at >= SLOW_WARNING_INTERVAL:
            self._warned_at = now
            log.warning(
                "plugin %s held the event loop for %.0f ms on route %s (limit %.0f ms): "
                "every request of this worker waited; make it async or faster",
                self.plugin_name,
                seconds * 1000,
                self.route_label,
                self.plugin.slow_step * 1000,
            )


class _TimedSteps:
    """Awaits a coroutine while timing each synchronous step it takes between awaits."""

    def __init__(self, coro: Coroutine[Any, Any, Any], judge: Any) -> None:
        self.coro = coro
        self.judge = judge

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.perf_counter()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                self.judge(time.perf_counter() - started)
                return stop.value
            self.judge(time.perf_counter() - started)
            try:
                value = yield yielded
                error = None
            except BaseException as exc:  # cancellation too: the coroutine sees it
                value = None
                error = exc


def _request_view(flow: Flow, route_label: str) -> RequestView:
    request = flow.request
    headers: dict[str, str] = {}
    for line in request.kept:
        name, _, value = line.partition(b":")
        headers.setdefault(name.decode("latin-1").lower(), value.strip().decode("latin-1"))
    return RequestView(
        request.method.decode("ascii"),
        flow.target.decode("ascii"),
        headers,
        flow.client_address(),
        route_label,
    )


def _caller(principal: Principal | None) -> Caller | None:
    if principal is None:
        return None
    return Caller(principal.subject, principal.claims, principal.scopes, principal.provider)
