"""The identity application: `create_app(settings)` builds one, nothing happens at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from servicekit.handlers import install_error_handlers
from servicekit.health import health_router
from servicekit.migrations import upgrade_to_head
from sqlalchemy import select

from identity.context import IdentityContext
from identity.models import ROLE_ADMIN, User
from identity.routes.tokens import tokens_router
from identity.routes.users import create_user, users_router
from identity.settings import MIGRATIONS_DIR, IdentitySettings

log = logging.getLogger("identity")


def _bootstrap_admin(ctx: IdentityContext) -> None:
    name, password = ctx.settings.admin_username, ctx.settings.admin_password
    if not name or not password:
        return
    with ctx.database.session() as session:
        existing = session.scalar(select(User).where(User.username == name))
        if existing is not None:
            if existing.role != ROLE_ADMIN:
                existing.role = ROLE_ADMIN
                session.commit()
                log.info("bootstrap: gave %s the admin role", name)
            return
    create_user(ctx, name, password, ROLE_ADMIN)
    log.info("bootstrap: created admin user %s", name)


def start_up(ctx: IdentityContext) -> None:
    if ctx.settings.migrate_on_start:
        upgrade_to_head(MIGRATIONS_DIR, ctx.settings.database_url)
    if ctx.keys.ensure_key():
        log.warning(
            "no signing key in %s: generated a development key (rotate with "
            "`python -m identity.keys rotate --dir %s`)",
            ctx.keys.path,
            ctx.keys.path,
        )
    _bootstrap_admin(ctx)


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    ctx = IdentityContext.build(settings or IdentitySettings.from_env())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        start_up(ctx)
        yield
        ctx.database.dispose()

    app = FastAPI(
        title="propylon identity",
        summary="Users, JWT access tokens, refresh-token rotation and the JWKS.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health_router(ctx.database))
    app.include_router(users_router(ctx))
    app.include_router(tokens_router(ctx))
    return app
