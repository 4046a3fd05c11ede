"""Log in, refresh, revoke, and publish the verification keys."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from servicekit import ResponseCode, ServiceError, envelope
from sqlalchemy import select

from identity.context import IdentityContext
from identity.models import User
from identity.schemas import Login, RefreshTokenBody


def _token_pair(ctx: IdentityContext, user: User, refresh: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "access_token": ctx.access_tokens.issue(user.username, user.role, now),
        "token_type": "Bearer",
        "expires_in": ctx.settings.access_ttl_seconds,
        "refresh_token": refresh,
    }


def tokens_router(ctx: IdentityContext) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["tokens"])

    @router.post("/token", summary="Log in with a JSON username and password")
    def login(body: Login) -> JSONResponse:
        wait = ctx.throttle.retry_after(body.username)
        if wait is not None:
            raise ServiceError(
                429,
                ResponseCode.Restricted,
                "Too many failed logins for this username; try again later.",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        with ctx.database.session() as session:
            user = session.scalar(select(User).where(User.username == body.username))
            # Unknown user and wrong password take the same path and the same argon2 work.
            if not ctx.vault.verify(user.password_hash if user else None, body.password):
                ctx.throttle.record_failure(body.username)
                raise ServiceError(
                    401, ResponseCode.BadLoginRequest, "Invalid username or password."
                )
            assert user is not None
            ctx.throttle.record_success(body.username)
            if ctx.vault.needs_rehash(user.password_hash):
                user.password_hash = ctx.vault.hash(body.password)
            refresh = ctx.refresh_tokens.issue(session, user, datetime.now(UTC))
            data = _token_pair(ctx, user, refresh)
            session.commit()
        return envelope(ResponseCode.LoginSuccess, "Logged in.", data)

    @router.post("/token/refresh", summary="Exchange a refresh token for new tokens")
    def refresh(body: RefreshTokenBody) -> JSONResponse:
        with ctx.database.session() as session:
            user, new_refresh = ctx.refresh_tokens.rotate(
                session, body.refresh_token, datetime.now(UTC)
            )
            data = _token_pair(ctx, user, new_refresh)
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
