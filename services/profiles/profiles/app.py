"""The profiles application: `create_app(settings)` builds one, nothing happens at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from servicekit.assertion import KeyMaterialError
from servicekit.handlers import install_error_handlers
from servicekit.health import health_router
from servicekit.migrations import upgrade_to_head
from servicekit.openapi import install_openapi
from servicekit.startup import StartupError

from profiles.context import ProfilesContext
from profiles.routes.avatars import avatars_router
from profiles.routes.profiles import profiles_router
from profiles.settings import MIGRATIONS, ProfilesSettings

log = logging.getLogger("profiles")


def start_up(ctx: ProfilesContext) -> None:
    if ctx.settings.migrate_on_start:
        upgrade_to_head(MIGRATIONS, ctx.settings.database_url)
    ctx.avatars.ensure_directory()
    try:
        ctx.callers.start("profiles")
    except KeyMaterialError as exc:
        raise StartupError(str(exc)) from None


def create_app(settings: ProfilesSettings | None = None) -> FastAPI:
    ctx = ProfilesContext.build(settings or ProfilesSettings.from_env())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        start_up(ctx)
        yield
        ctx.database.dispose()

    app = FastAPI(
        title="propylon profiles",
        summary="Profiles owned by the caller the gateway names.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health_router(ctx.database, ctx.schema))
    app.include_router(profiles_router(ctx))
    app.include_router(avatars_router(ctx))
    install_openapi(app, ctx.callers)
    return app
