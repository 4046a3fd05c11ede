"""Profile CRUD: a user sees and changes only their own profiles, an admin all of them."""

# No `from __future__ import annotations`: FastAPI must see the local dependency types.

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from servicekit import ResponseCode, ServiceError, envelope
from servicekit.openapi import NEEDS_CALLER, failures
from servicekit.pagination import PageRequest, page_request
from servicekit.validation import single_field_failure
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from profiles.caller import Caller, caller_from
from profiles.context import ProfilesContext
from profiles.models import Profile
from profiles.schemas import NewProfile, ProfileChanges
from profiles.views import profile_view

# Ids are a 32-bit INTEGER column on PostgreSQL (and SQLite's integers end at 2**63): a
# larger path id can name no profile, so it is "not found" instead of a database error.
MAX_PROFILE_ID = 2**31 - 1


def not_found() -> ServiceError:
    # Someone else's profile is "not found" too: its existence is not the caller's business.
    return ServiceError(404, ResponseCode.ObjectNotFound, "No such profile.")


def visible_profile(session: Session, caller: Caller, profile_id: int) -> Profile:
    if not 1 <= profile_id <= MAX_PROFILE_ID:
        raise not_found()
    profile = session.get(Profile, profile_id)
    if profile is None or not caller.may_access(profile.owner):
        raise not_found()
    return profile


def profiles_router(ctx: ProfilesContext) -> APIRouter:
    router = APIRouter(prefix="/profiles", tags=["profiles"])

    def current_caller(request: Request) -> Caller:
        return caller_from(request, ctx.callers)

    CurrentCaller = Annotated[Caller, Depends(current_caller)]
    Page = Annotated[PageRequest, Depends(page_request)]

    @router.get(
        "",
        summary="List the caller's profiles (an admin sees all)",
        openapi_extra=NEEDS_CALLER,
    )
    def list_profiles(caller: CurrentCaller, page: Page) -> JSONResponse:
        query = select(Profile)
        if not caller.is_admin:
            query = query.where(Profile.owner == caller.name)
        with ctx.database.session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(Profile.id).offset(page.offset).limit(page.page_size)
            ).all()
            data = page.result([profile_view(p) for p in rows], total)
        return envelope(ResponseCode.DataFound, "Profiles found.", data)

    @router.post(
        "",
        status_code=201,
        summary="Create a profile owned by the caller",
        openapi_extra=NEEDS_CALLER,
    )
    def create_profile(caller: CurrentCaller, body: NewProfile) -> JSONResponse:
        now = datetime.now(UTC)
        profile = Profile(
            owner=caller.name,
            display_name=body.display_name,
            bio=body.bio,
            location=body.location,
            created_at=now,
            updated_at=now,
        )
        with ctx.database.session() as session:
            session.add(profile)
            session.commit()
            data = profile_view(profile)
        return envelope(ResponseCode.DataCreated, "Profile created.", data, status=201)

    @router.get(
        "/{profile_id}",
        summary="Get one profile",
        responses=failures(404),
        openapi_extra=NEEDS_CALLER,
    )
    def get_profile(caller: CurrentCaller, profile_id: int) -> JSONResponse:
        with ctx.database.session() as session:
            data = profile_view(visible_profile(session, caller, profile_id))
        return envelope(ResponseCode.DataFound, "Profile found.", data)

    @router.patch(
        "/{profile_id}",
        summary="Change some fields of a profile",
        responses=failures(404),
        openapi_extra=NEEDS_CALLER,
    )
    def update_profile(
        caller: CurrentCaller, profile_id: int, body: ProfileChanges
    ) -> JSONResponse:
        changes = body.model_dump(exclude_unset=True)
        if changes.get("display_name", "") is None:
            raise single_field_failure("DisplayName", "'DisplayName' must not be empty.")
        with ctx.database.session() as session:
            profile = visible_profile(session, caller, profile_id)
            if not changes:
                raise ServiceError(400, ResponseCode.ObjectNotUpdated, "No fields to change.")
            for field, value in changes.items():
                setattr(profile, field, "" if value is None else value)
            profile.updated_at = datetime.now(UTC)
            session.commit()
            data = profile_view(profile)
        return envelope(ResponseCode.DataUpdated, "Profile updated.", data)

    @router.delete(
        "/{profile_id}",
        summary="Delete a profile and its avatar",
        responses=failures(404),
        openapi_extra=NEEDS_CALLER,
    )
    def delete_profile(caller: CurrentCaller, profile_id: int) -> JSONResponse:
        with ctx.database.session() as session:
            profile = visible_profile(session, caller, profile_id)
            avatar = profile.avatar_file
            session.delete(profile)
            session.commit()
        ctx.avatars.discard(avatar)
        return envelope(ResponseCode.DataDeleted, "Profile deleted.")

    return router
