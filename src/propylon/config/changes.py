"""What a reload changes: routes added, removed and modified, and what only a restart applies.

A route is known by what a client sees of it: its methods, its ``UpstreamHost`` and its
template (``RouteSpec.counter_key``, which names its rate-limit counters too). Its position
in the file is not part of it: moving a route is not a change. Settings bound to sockets the
supervisor opened (the TLS listener, the admin listener), the signed hop's key (its public
keys were published at start-up) and the tracing settings (each worker's span exporter) are
kept as they were, and the reload says they need a restart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from propylon.config.model import GatewayConfig, RouteSpec


@dataclass(frozen=True, slots=True)
class Changes:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()
    """Settings that changed in the file but are not applied: what, and that it needs one."""
    settings: bool = False
    """Something other than the routes changed (and is applied)."""

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.modified or self.settings)

    def summary(self) -> str:
        parts = [
            f"{name} {', '.join(items)}"
            for name, items in (
                ("added", self.added),
                ("removed", self.removed),
                ("modified", self.modified),
            )
            if items
        ]
        if self.settings:
            parts.append("settings changed")
        return "; ".join(parts) if parts else "no change"

    def as_dict(self) -> dict[str, object]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "modified": list(self.modified),
            "needs_restart": list(self.needs_restart),
        }


def route_name(spec: RouteSpec) -> str:
    """``GET,POST api.example.com/orders/{id}``: methods, host and template."""
    methods = ",".join(sorted(spec.methods)) if spec.methods else "*"
    return f"{methods} {spec.upstream_host or ''}{spec.upstream_path}"


def _comparable(spec: RouteSpec) -> RouteSpec:
    return dataclasses.replace(spec, source="")


def diff(old: GatewayConfig, new: GatewayConfig) -> Changes:
    before = {spec.counter_key: spec for spec in old.routes}
    after = {spec.counter_key: spec for spec in new.routes}
    added = tuple(route_name(s) for k, s in after.items() if k not in before)
    removed = tuple(route_name(s) for k, s in before.items() if k not in after)
    modified = tuple(
        route_name(s)
        for k, s in after.items()
        if k in before and _comparable(before[k]) != _comparable(s)
    )
    restart: list[str] = []
    if old.tls != new.tls:
        restart.append(f"tls: {_tls(old)} -> {_tls(new)} needs a restart")
    if _admin(old) != _admin(new):
        restart.append(f"admin.listen: {_admin(old)} -> {_admin(new)} needs a restart")
    if old.assertion != new.assertion:
        restart.append("assertion: the signing settings changed; that needs a restart")
    if old.tracing != new.tracing:
        # Each worker's span exporter (a thread and its queue) is set up once, at start.
        restart.append("tracing: the export or sampling settings changed; that needs a restart")
    kept = applied(old, new)
    settings = dataclasses.replace(kept, routes=(), warnings=(), source="") != dataclasses.replace(
        old, routes=(), warnings=(), source=""
    )
    return Changes(added, removed, modified, tuple(restart), settings)


def applied(old: GatewayConfig, new: GatewayConfig) -> GatewayConfig:
    """``new`` as a reload applies it: what needs a restart stays as ``old`` has it."""
    return dataclasses.replace(
        new, tls=old.tls, admin=old.admin, assertion=old.assertion, tracing=old.tracing
    )


def _tls(config: GatewayConfig) -> str:
    tls = config.tls
    if tls is None:
        return "off"
    return f"port {tls.port}{' only' if tls.only else ''} ({tls.cert_file})"


def _admin(config: GatewayConfig) -> str:
    admin = config.admin
    if admin is None:
        return "off"
    shown = f"[{admin.host}]" if ":" in admin.host else admin.host
    return f"{shown}:{admin.port}"
