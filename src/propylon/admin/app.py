"""The operations listener's ``aiohttp.web`` application: one handler per endpoint.

Every error is the gateway's JSON envelope with a code from docs/error-codes.md; nothing a
handler raises reaches the client as a traceback (the middleware answers 500 and logs it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from propylon import errors
from propylon.admin.config_view import config_view
from propylon.admin.guard import TokenGuard
from propylon.admin.metrics import CONTENT_TYPE, render_metrics
from propylon.admin.reloads import ReloadControl
from propylon.admin.workers import WorkerGroup
from propylon.config.model import GatewayConfig
from propylon.config.route_table import table_rows, title
from propylon.stats.merge import merge_snapshots
from propylon.stats.report import render_report

log = logging.getLogger("propylon.admin")

JWKS_PATH = "/.well-known/jwks.json"
ADMIN_UNAUTHORIZED = errors.ErrorKind(
    401, 405, "Unauthorized", "A valid admin token is required (Authorization: Bearer)."
)
ADMIN_NOT_FOUND = errors.ErrorKind(404, 421, "RouteNotFound", "No admin endpoint at this path.")
JWKS_OFF = errors.ErrorKind(
    404, 421, "RouteNotFound", "Signed gateway assertions are off: there are no public keys."
)
RELOAD_UNFINISHED = errors.ErrorKind(
    503, 511, "NotReady", "The reload did not finish in time; see data for how far it got."
)
DASHBOARD_LATER = errors.ErrorKind(
    501, 520, "NotImplemented", "The dashboard is not implemented yet (issue #14 item 5)."
)
NOT_READY = "NotReady"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class AdminContext:
    config: GatewayConfig
    group: WorkerGroup
    jwks: dict[str, Any] | None
    """The assertion's public JWK set; None when assertions are off."""
    reloads: ReloadControl | None = None
    """Reloads (``POST /reload``, the record); None: this gateway cannot reload."""


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_INDENT_2),
        status=status,
        content_type="application/json",
    )


def error_response(
    kind: errors.ErrorKind, headers: dict[str, str] | None = None, data: object = None
) -> web.Response:
    return web.Response(
        body=errors.envelope(kind.code, kind.codemessage, kind.message, data),
        status=kind.status,
        content_type="application/json",
        headers=headers,
    )


def build_app(context: AdminContext) -> web.Application:
    guard = TokenGuard(context.config.admin.token if context.config.admin else None)

    @web.middleware
    async def envelope_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not guard.allows(request.path, request.headers.get("Authorization")):
            return error_response(ADMIN_UNAUTHORIZED, {"WWW-Authenticate": 'Bearer realm="admin"'})
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed as exc:
            allow = ", ".join(sorted(exc.allowed_methods))
            return error_response(errors.METHOD_NOT_ALLOWED, {"Allow": allow})
        except web.HTTPNotFound:
            return error_response(ADMIN_NOT_FOUND)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("admin endpoint %s failed", request.path)
            return error_response(errors.INTERNAL)

    app = web.Application(middlewares=[envelope_errors])
    group = context.group
    reloads = context.reloads

    def current() -> GatewayConfig:
        return reloads.config() if reloads is not None else context.config

    def last_reload() -> dict[str, Any] | None:
        return reloads.record() if reloads is not None else None

    async def healthz(_request: web.Request) -> web.Response:
        return _json({"alive": True})

    async def readyz(_request: web.Request) -> web.Response:
        state = group.readiness()
        record = last_reload()
        body = {
            "ready": state.ready,
            "draining": state.draining,
            "reason": state.reason,
            "workers": state.workers,
            "config": context.config.source,
            # Still ready when the last reload failed: the previous config serves.
            "last_reload_error": record["last_error"] if record is not None else None,
            "last_reload": record,
        }
        if state.ready:
            return _json(body)
        message = state.reason or "not ready"
        return web.Response(
            body=errors.envelope(511, NOT_READY, message, body),
            status=503,
            content_type="application/json",
        )

    async def stats(_request: web.Request) -> web.Response:
        merged = merge_snapshots(await group.snapshots())
        return _json(render_report(merged, workers=group.workers))

    async def metrics(_request: web.Request) -> web.Response:
        snapshots = await group.snapshots()
        body = render_metrics(merge_snapshots(snapshots), snapshots, group.workers, last_reload())
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def show_config(_request: web.Request) -> web.Response:
        return _json(config_view(current()))

    async def routes(_request: web.Request) -> web.Response:
        config = current()
        return _json({"title": title(config), "routes": table_rows(config)})

    async def jwks(_request: web.Request) -> web.Response:
        if context.jwks is None:
            return error_response(JWKS_OFF)
        response = _json(context.jwks)
        # Services cache it; a key rotation reaches them within this.
        response.headers["Cache-Control"] = "max-age=60"
        return response

    async def reload(_request: web.Request) -> web.Response:
        if reloads is None:
            return error_response(RELOAD_UNFINISHED, data={"result": "unavailable"})
        status, data = await reloads.reload()
        if status == 200:
            return _json(data)
        kind = errors.CONFIG_REJECTED if status == 400 else RELOAD_UNFINISHED
        return error_response(kind, data=data)

    async def dashboard(_request: web.Request) -> web.Response:
        return error_response(DASHBOARD_LATER)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/config", show_config)
    app.router.add_get("/routes", routes)
    app.router.add_get(JWKS_PATH, jwks)
    app.router.add_post("/reload", reload)
    app.router.add_get("/", dashboard)
    return app
