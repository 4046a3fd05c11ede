"""The identity application: `create_app(settings)` builds one, nothing happens at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from pydantic import ValidationError
from servicekit.assertion import KeyMaterialError
from servicekit.handlers import install_error_handlers
from servicekit.health import health_router
from servicekit.migrations import upgrade_to_head
from servicekit.openapi import install_openapi
from servicekit.startup import StartupError
from servicekit.validation import from_pydantic
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from identity.accounts import insert_user
from identity.context import IdentityContext
from identity.keys import KeyFileError
from identity.models import ROLE_ADMIN, RetiredUsername, User
from identity.routes.account import account_router
from identity.routes.tokens import tokens_router
from identity.routes.users import users_router
from identity.schemas import NewUser, same_as_username
from identity.settings import MIGRATIONS, IdentitySettings

log = logging.getLogger("identity")

_ADMIN_VARIABLES = {"Username": "IDENTITY_ADMIN_USERNAME", "Password": "IDENTITY_ADMIN_PASSWORD"}


def _admin_credentials(settings: IdentitySettings) -> tuple[str, str] | None:
    """The bootstrap admin's name and password, held to the registration rules."""
    name, password = settings.admin_username, settings.admin_password
    if not name and not password:
        return None
    if not name or not password:
        raise StartupError(
            "set both IDENTITY_ADMIN_USERNAME and IDENTITY_ADMIN_PASSWORD, or neither"
        )
    try:
        NewUser(username=name, password=password)
    except ValidationError as exc:
        # Located as a request body's fields are, so the messages read as registration's.
        located = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        errors = from_pydantic(located).as_dict()
        reasons = "; ".join(
            f"{_ADMIN_VARIABLES.get(field, field)}: {' '.join(messages)}"
            for field, messages in errors.items()
        )
        raise StartupError(
            f"the bootstrap admin breaks the registration rules: {reasons}"
        ) from None
    same = same_as_username(name, password)
    if same:
        raise StartupError(f"IDENTITY_ADMIN_PASSWORD: {same}")
    return name, password


def bootstrap_admin(ctx: IdentityContext) -> None:
    """Create the configured admin if no account has that name; never take one over.

    An existing admin of that name is left as it is (its password may have been changed
    since). An existing non-admin account is refused: anyone could have registered the name
    first, and promoting it would hand them the admin role with their own password.
    """
    credentials = _admin_credentials(ctx.settings)
    if credentials is None:
        return
    name, password = credentials
    with ctx.database.session() as session:
        existing = session.scalar(select(User.role).where(User.username == name))
        retired = session.get(RetiredUsername, name) is not None
    if existing == ROLE_ADMIN:
        log.info("bootstrap: admin %s exists; IDENTITY_ADMIN_PASSWORD only sets a new one", name)
        return
    if existing is not None:
        raise StartupError(
            f"IDENTITY_ADMIN_USERNAME names the existing non-admin account {name!r}: refusing "
            "to promote it (anyone may have registered that name). Choose an unused name, or "
            "have an admin promote the account if it is yours"
        )
    if retired:
        raise StartupError(
            f"IDENTITY_ADMIN_USERNAME names the deleted account {name!r}, and deleted names "
            "are never reused: choose another"
        )
    try:
        insert_user(ctx, name, ctx.vault.hash(password), ROLE_ADMIN)
    except Exception:
        # Another replica may have created it this instant; that is the same outcome.
        with ctx.database.session() as session:
            if session.scalar(select(User.role).where(User.username == name)) != ROLE_ADMIN:
                raise
        return
    log.info("bootstrap: created admin user %s", name)


def start_up(ctx: IdentityContext) -> None:
    if ctx.settings.migrate_on_start:
        upgrade_to_head(MIGRATIONS, ctx.settings.database_url)
    if ctx.keys.ensure_key():
        log.warning(
            "no signing key in %s: generated a development key (rotate with "
            "`python -m identity.keys rotate --dir %s`)",
            ctx.keys.path,
            ctx.keys.path,
        )
    try:
        ctx.keys.check()
    except KeyFileError as exc:
        raise StartupError(str(exc)) from None
    try:
        ctx.callers.start("identity")
    except KeyMaterialError as exc:
        raise StartupError(str(exc)) from None
    try:
        with ctx.database.engine.connect() as connection:
            problem = ctx.schema.problem(connection)
    except SQLAlchemyError as exc:
        problem = f"the database is unavailable ({type(exc).__name__})"
    if problem:
        # Served, but not ready (/healthz says why); the bootstrap waits for a restart.
        log.error("not ready: %s; the admin bootstrap did not run", problem)
        return
    bootstrap_admin(ctx)


async def _purge_tokens(ctx: IdentityContext) -> None:
    """Delete refresh tokens that can no longer matter, now and then every interval."""

    def purge() -> int:
        with ctx.database.session() as session:
            removed = ctx.refresh_tokens.purge(session, datetime.now(UTC))
            session.commit()
            return removed

    while True:
        try:
            removed = await run_in_threadpool(purge)
            if removed:
                log.info("purged %d expired or revoked refresh tokens", removed)
        except SQLAlchemyError as exc:
            log.warning("refresh-token purge failed (will retry): %s", exc)
        await asyncio.sleep(ctx.settings.token_purge_interval_seconds)


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    ctx = IdentityContext.build(settings or IdentitySettings.from_env())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        start_up(ctx)
        purger = asyncio.create_task(_purge_tokens(ctx))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await ctx.throttle.store.close()
            ctx.database.dispose()

    app = FastAPI(
        title="propylon identity",
        summary="Users, JWT access tokens, refresh-token rotation and the JWKS.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health_router(ctx.database, ctx.schema, [ctx.throttle.store.ping]))
    app.include_router(users_router(ctx))
    app.include_router(tokens_router(ctx))
    app.include_router(account_router(ctx))
    install_openapi(app, ctx.callers)
    return app
