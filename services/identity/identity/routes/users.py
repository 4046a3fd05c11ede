"""Creating users, and the administrator's user list, role change, password reset, deletion."""

# No `from __future__ import annotations`: FastAPI must see the local dependency types.

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from servicekit import ResponseCode, ServiceError, envelope
from servicekit.openapi import NEEDS_CALLER, failures
from servicekit.pagination import PageRequest, page_request
from servicekit.validation import single_field_failure
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from identity.accounts import (
    admins_left,
    delete_user,
    insert_user,
    last_admin,
    name_taken,
    not_unique,
    user_by_path,
    user_view,
)
from identity.context import IdentityContext
from identity.models import ROLE_ADMIN, ROLE_USER, User
from identity.schemas import NewUser, PasswordReset, RoleChange, same_as_username


def users_router(ctx: IdentityContext) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["users"])

    def require_admin(request: Request) -> str:
        # The gateway enforces `role: admin` on these routes; this is the second check, so a
        # misconfigured route still cannot reach them. The role is read from the database,
        # not from anything the request says.
        name = ctx.callers.caller(request).name
        with ctx.database.session() as session:
            role = session.scalar(select(User.role).where(User.username == name))
        if role != ROLE_ADMIN:
            raise ServiceError(403, ResponseCode.Restricted, "This action requires an admin.")
        return name

    admin_only = [Depends(require_admin)]

    @router.post(
        "/users",
        status_code=201,
        summary="Create a user",
        responses=failures(409, 429, 503),
    )
    async def register(request: Request, body: NewUser) -> JSONResponse:
        same = same_as_username(body.username, body.password)
        if same:
            raise single_field_failure("Password", same)
        await ctx.throttle.admit_registration(ctx.clients.of(request))

        def taken() -> bool:
            with ctx.database.session() as session:
                return name_taken(session, body.username)

        # Checked before the (costly) hash; checked again, atomically, by the insert.
        if await run_in_threadpool(taken):
            raise not_unique(body.username)
        password_hash = await ctx.vault.hash_async(body.password)
        user = await run_in_threadpool(insert_user, ctx, body.username, password_hash, ROLE_USER)
        return envelope(ResponseCode.DataCreated, "User created.", user_view(user), status=201)

    @router.get(
        "/users",
        summary="List users (admin only)",
        responses=failures(403),
        openapi_extra=NEEDS_CALLER,
        dependencies=admin_only,
    )
    def list_users(page: Annotated[PageRequest, Depends(page_request)]) -> JSONResponse:
        with ctx.database.session() as session:
            total = session.scalar(select(func.count()).select_from(User)) or 0
            users = session.scalars(
                select(User).order_by(User.id).offset(page.offset).limit(page.page_size)
            ).all()
        data = page.result([user_view(u) for u in users], total)
        return envelope(ResponseCode.DataFound, "Users found.", data)

    @router.patch(
        "/users/{username}/role",
        summary="Change a user's role (admin only)",
        responses=failures(403, 404, 409),
        openapi_extra=NEEDS_CALLER,
        dependencies=admin_only,
    )
    def change_role(username: str, body: RoleChange) -> JSONResponse:
        with ctx.database.session() as session:
            user = user_by_path(session, username)
            user.role = body.role
            session.flush()
            if admins_left(session) == 0:
                raise last_admin()
            session.commit()
            data = user_view(user)
        return envelope(ResponseCode.DataUpdated, "Role updated.", data)

    @router.put(
        "/users/{username}/password",
        summary="Set a user's password and end their sessions (admin only)",
        responses=failures(403, 404, 503),
        openapi_extra=NEEDS_CALLER,
        dependencies=admin_only,
    )
    async def reset_password(username: str, body: PasswordReset) -> JSONResponse:
        same = same_as_username(username, body.password)
        if same:
            raise single_field_failure("Password", same)

        def exists() -> None:
            with ctx.database.session() as session:
                user_by_path(session, username)

        await run_in_threadpool(exists)
        password_hash = await ctx.vault.hash_async(body.password)

        def store() -> None:
            with ctx.database.session() as session:
                user = user_by_path(session, username)
                user.password_hash = password_hash
                ctx.refresh_tokens.revoke_user(session, user.id)
                session.commit()

        await run_in_threadpool(store)
        return envelope(ResponseCode.DataUpdated, "Password set; the user's sessions ended.")

    @router.delete(
        "/users/{username}",
        summary="Delete a user and retire the name (admin only)",
        responses=failures(403, 404, 409),
        openapi_extra=NEEDS_CALLER,
        dependencies=admin_only,
    )
    def remove_user(username: str) -> JSONResponse:
        with ctx.database.session() as session:
            delete_user(session, user_by_path(session, username))
            session.commit()
        return envelope(ResponseCode.DataDeleted, "User deleted.")

    return router
