"""Creating users, and the administrator's user list and role change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from servicekit import ResponseCode, ServiceError, envelope
from servicekit.caller import caller_name
from servicekit.database import as_utc
from servicekit.pagination import PageRequest, page_request
from servicekit.validation import single_field_failure
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from identity.context import IdentityContext
from identity.models import ROLE_ADMIN, ROLE_USER, User
from identity.schemas import NewUser, RoleChange


def user_view(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "created_at": as_utc(user.created_at)}


def _not_unique(username: str) -> ServiceError:
    return ServiceError(409, ResponseCode.NotUnique, f"The username '{username}' is taken.")


def create_user(ctx: IdentityContext, username: str, password: str, role: str) -> User:
    user = User(
        username=username,
        password_hash=ctx.vault.hash(password),
        role=role,
        created_at=datetime.now(UTC),
    )
    with ctx.database.session() as session:
        session.add(user)
        try:
            session.commit()
        except IntegrityError:
            raise _not_unique(username) from None
    return user


def users_router(ctx: IdentityContext) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["users"])

    def require_admin(request: Request) -> str:
        # The gateway enforces `role: admin` on these routes; this is the second check, so a
        # misconfigured route still cannot reach them. The role is read from the database,
        # not from anything the request says.
        name = caller_name(request.headers.get(ctx.settings.user_header))
        with ctx.database.session() as session:
            role = session.scalar(select(User.role).where(User.username == name))
        if role != ROLE_ADMIN:
            raise ServiceError(403, ResponseCode.Restricted, "This action requires an admin.")
        return name

    admin_only = [Depends(require_admin)]

    @router.post("/users", status_code=201, summary="Create a user")
    def register(body: NewUser) -> JSONResponse:
        if body.password == body.username:
            raise single_field_failure("Password", "'Password' must not be the same as 'Username'.")
        with ctx.database.session() as session:
            if session.scalar(select(User.id).where(User.username == body.username)):
                raise _not_unique(body.username)
        user = create_user(ctx, body.username, body.password, ROLE_USER)
        return envelope(ResponseCode.DataCreated, "User created.", user_view(user), status=201)

    @router.get("/users", summary="List users (admin only)", dependencies=admin_only)
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
        dependencies=admin_only,
    )
    def change_role(username: str, body: RoleChange) -> JSONResponse:
        with ctx.database.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise ServiceError(404, ResponseCode.ObjectNotFound, "No such user.")
            user.role = body.role
            session.commit()
            data = user_view(user)
        return envelope(ResponseCode.DataUpdated, "Role updated.", data)

    return router
