"""Log in, refresh, revoke, and publish the verification keys."""

# No `from __future__ import annotations`: FastAPI must see the local dependency types.

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from servicekit import ResponseCode, ServiceError, envelope
from servicekit.openapi import failures
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from identity.accounts import Account, find_account
from identity.context import IdentityContext
from identity.models import User
from identity.passwords import HashingBusy
from identity.schemas import Login, RefreshTokenBody
from identity.throttle import Attempt

log = logging.getLogger("identity.tokens")


def bad_login() -> ServiceError:
    return ServiceError(401, ResponseCode.BadLoginRequest, "Invalid username or password.")


def token_pair(ctx: IdentityContext, username: str, role: str, refresh: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "access_token": ctx.access_tokens.issue(username, role, now),
        "token_type": "Bearer",
        "expires_in": ctx.settings.access_ttl_seconds,
        "refresh_token": refresh,
    }


def new_session(
    ctx: IdentityContext, account: Account, new_hash: str | None = None
) -> dict[str, Any]:
    """Start a refresh family for `account` (storing a new hash if given): a token pair."""
    with ctx.database.session() as session:
        if new_hash is not None:
            session.execute(
                update(User).where(User.id == account.user_id).values(password_hash=new_hash)
            )
        refresh = ctx.refresh_tokens.issue(session, account.user_id, datetime.now(UTC))
        try:
            session.commit()
        except IntegrityError:
            # The account was deleted between the password check and now.
            raise bad_login() from None
    return token_pair(ctx, account.username, account.role, refresh)


async def check_password(
    ctx: IdentityContext, request: Request, username: str, password: str
) -> tuple[Account | None, Attempt]:
    """Throttle, look up, verify: (the account if the password is right, the attempt).

    The attempt is counted before the work and given back if the password was never
    checked (hashing queue full, database error); a failure stays counted. The caller
    reports success with `ctx.throttle.succeeded(attempt)`.
    """
    attempt = await ctx.throttle.admit_login(username, ctx.clients.of(request))
    checked = False

    def lookup() -> Account | None:
        with ctx.database.session() as session:
            return find_account(session, username)

    try:
        account = await run_in_threadpool(lookup)
        # Unknown user and wrong password take the same path and the same argon2 work.
        right = await ctx.vault.verify_async(account.password_hash if account else None, password)
        checked = True
    finally:
        if not checked:
            await ctx.throttle.not_tried(attempt)
    return (account if right else None), attempt


def tokens_router(ctx: IdentityContext) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["tokens"])

    @router.post(
        "/token",
        summary="Log in with a JSON username and password",
        responses=failures(401, 429, 503),
    )
    async def login(request: Request, body: Login) -> JSONResponse:
        account, attempt = await check_password(ctx, request, body.username, body.password)
        if account is None:
            raise bad_login()
        await ctx.throttle.succeeded(attempt)
        new_hash = None
        if ctx.vault.needs_rehash(account.password_hash):
            try:
                new_hash = await ctx.vault.hash_async(body.password)
            except HashingBusy:
                log.info("rehash of %s postponed: hashing is busy", account.username)
        data = await run_in_threadpool(new_session, ctx, account, new_hash)
        return envelope(ResponseCode.LoginSuccess, "Logged in.", data)

    @router.post(
        "/token/refresh",
        summary="Exchange a refresh token for new tokens",
        responses=failures(401),
    )
    def refresh(body: RefreshTokenBody) -> JSONResponse:
        with ctx.database.session() as session:
            user, new_refresh = ctx.refresh_tokens.rotate(
                session, body.refresh_token, datetime.now(UTC)
            )
            data = token_pair(ctx, user.username, user.role, new_refresh)
            session.commit()
        return envelope(ResponseCode.TokenRefreshed, "Token refreshed.", data)

    @router.post("/token/revoke", summary="Revoke a refresh token and its whole family")
    def revoke(body: RefreshTokenBody) -> JSONResponse:
        # Answers the same whether or not the token existed (RFC 7009), so it is no oracle.
        with ctx.database.session() as session:
            ctx.refresh_tokens.revoke(session, body.refresh_token)
            session.commit()
        return envelope(ResponseCode.TokenRevoked, "Token revoked.")

    @router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
    def jwks() -> JSONResponse:
        return JSONResponse(ctx.keys.ring().jwks(), headers={"Cache-Control": "public, max-age=60"})

    return router
