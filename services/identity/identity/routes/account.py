"""The caller's own account: change the password, log out everywhere, delete the account.

The caller is who the gateway says (servicekit.caller). Changing the password and deleting
the account also need the current password, through the login throttle: a stolen access
token alone can neither lock the owner out nor guess the password faster than a login.
"""

# No `from __future__ import annotations`: FastAPI must see the local dependency types.

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from servicekit import ResponseCode, ServiceError, envelope
from servicekit.openapi import NEEDS_CALLER, failures
from servicekit.validation import single_field_failure
from starlette.concurrency import run_in_threadpool

from identity.accounts import Account, caller_gone, delete_user, find_account
from identity.context import IdentityContext
from identity.models import User
from identity.routes.tokens import check_password, token_pair
from identity.schemas import AccountDeletion, PasswordChange, same_as_username


def wrong_password() -> ServiceError:
    return ServiceError(403, ResponseCode.BadLoginRequest, "The password is not correct.")


def account_router(ctx: IdentityContext) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["account"])

    async def proven(request: Request, password: str) -> Account:
        """The caller's account once `password` is proven right (throttled like a login)."""
        # In the thread pool: verifying may fetch the gateway's JWKS (blocking, bounded).
        name = (await run_in_threadpool(ctx.callers.caller, request)).name
        account, attempt = await check_password(ctx, request, name, password)
        if account is None:

            def exists() -> bool:
                with ctx.database.session() as session:
                    return find_account(session, name) is not None

            if not await run_in_threadpool(exists):
                raise caller_gone()
            raise wrong_password()
        await ctx.throttle.succeeded(attempt)
        return account

    @router.post(
        "/me/password",
        summary="Change the caller's password; ends every other session",
        responses=failures(403, 404, 429, 503),
        openapi_extra=NEEDS_CALLER,
    )
    async def change_password(request: Request, body: PasswordChange) -> JSONResponse:
        account = await proven(request, body.current_password)
        same = same_as_username(account.username, body.new_password)
        if same:
            raise single_field_failure("NewPassword", same.replace("'Password'", "'NewPassword'"))
        new_hash = await ctx.vault.hash_async(body.new_password)

        def store() -> dict[str, object]:
            now = datetime.now(UTC)
            with ctx.database.session() as session:
                user = session.get(User, account.user_id)
                if user is None:
                    raise caller_gone()
                user.password_hash = new_hash
                ctx.refresh_tokens.revoke_user(session, user.id)
                refresh = ctx.refresh_tokens.issue(session, user.id, now)
                session.commit()
                return token_pair(ctx, user.username, user.role, refresh)

        data = await run_in_threadpool(store)
        return envelope(
            ResponseCode.DataUpdated, "Password changed; other sessions were ended.", data
        )

    @router.post(
        "/token/revoke-all",
        summary="Log out everywhere: revoke every refresh token of the caller",
        responses=failures(404),
        openapi_extra=NEEDS_CALLER,
    )
    def revoke_all(request: Request) -> JSONResponse:
        name = ctx.callers.caller(request).name
        with ctx.database.session() as session:
            account = find_account(session, name)
            if account is None:
                raise caller_gone()
            ctx.refresh_tokens.revoke_user(session, account.user_id)
            session.commit()
        return envelope(ResponseCode.TokenRevoked, "Every session was revoked.")

    @router.delete(
        "/me",
        summary="Delete the caller's account (JSON body: the password)",
        responses=failures(403, 404, 409, 429, 503),
        openapi_extra=NEEDS_CALLER,
    )
    async def delete_me(request: Request, body: AccountDeletion) -> JSONResponse:
        account = await proven(request, body.password)

        def remove() -> None:
            with ctx.database.session() as session:
                user = session.get(User, account.user_id)
                if user is None:
                    raise caller_gone()
                delete_user(session, user)
                session.commit()

        await run_in_threadpool(remove)
        return envelope(ResponseCode.DataDeleted, "Account deleted.")

    return router
