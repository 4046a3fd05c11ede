"""Avatar upload (multipart, streamed to disk, size- and type-checked) and download."""

# No `from __future__ import annotations`: FastAPI must see the local dependency types.

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from servicekit import ResponseCode, ServiceError, envelope
from servicekit.openapi import NEEDS_CALLER, failures, invalid
from servicekit.validation import single_field_failure
from sqlalchemy import update
from starlette.concurrency import run_in_threadpool

from profiles.caller import Caller, caller_from
from profiles.context import ProfilesContext
from profiles.image_types import SNIFF_BYTES, sniff_image_type
from profiles.models import Profile
from profiles.routes.profiles import not_found, visible_profile
from profiles.upload import ReceivedFile, receive_file

# Each failed swap means another upload committed in between; more than a handful at once
# for one profile is not a user, so the rest are told to retry.
_SWAP_ATTEMPTS = 16

_UPLOAD_SCHEMA: dict[str, Any] = {
    **NEEDS_CALLER,
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    },
}


def avatars_router(ctx: ProfilesContext) -> APIRouter:
    router = APIRouter(prefix="/profiles", tags=["avatars"])

    def current_caller(request: Request) -> Caller:
        return caller_from(request, ctx.callers)

    CurrentCaller = Annotated[Caller, Depends(current_caller)]

    def check_access(caller: Caller, profile_id: int) -> None:
        with ctx.database.session() as session:
            visible_profile(session, caller, profile_id)

    def swap_in(
        caller: Caller, profile_id: int, name: str, received: ReceivedFile, kind: str
    ) -> str | None:
        """Make `name` the profile's avatar; returns the file it replaced.

        A compare-and-swap on the current file name: of concurrent uploads each replaces
        exactly the file it read, so every replaced file is known to the one upload that
        must delete it (8 concurrent uploads once left 3 files, 1 of them referenced).
        """
        for _ in range(_SWAP_ATTEMPTS):
            with ctx.database.session() as session:
                previous = visible_profile(session, caller, profile_id).avatar_file
                swapped = session.execute(
                    update(Profile)
                    .where(
                        Profile.id == profile_id,
                        Profile.avatar_file.is_not_distinct_from(previous),
                    )
                    .values(
                        avatar_file=name,
                        avatar_type=kind,
                        avatar_size=received.size,
                        avatar_sha256=received.sha256,
                    )
                )
                if getattr(swapped, "rowcount", 0) == 1:
                    session.commit()
                    return previous
                session.rollback()
        raise ServiceError(
            409, ResponseCode.ObjectNotUpdated, "The avatar is being replaced; try again."
        )

    def attach(caller: Caller, profile_id: int, partial: Path, received: ReceivedFile) -> str:
        content_type = sniff_image_type(received.head)
        if content_type is None:
            raise single_field_failure(
                "File", "'File' must be a PNG, JPEG, GIF or WebP image.", status=415
            )
        name = ctx.avatars.keep(partial, profile_id, content_type)
        try:
            previous = swap_in(caller, profile_id, name, received, content_type)
        except BaseException:
            # Not referenced by the row (refused, deleted meanwhile, database error): gone.
            ctx.avatars.discard(name)
            raise
        ctx.avatars.discard(previous)
        return content_type

    @router.put(
        "/{profile_id}/avatar",
        summary="Upload a profile's avatar (multipart field `file`)",
        responses={**failures(404, 409), **invalid(413, 415)},
        openapi_extra=_UPLOAD_SCHEMA,
    )
    async def upload_avatar(
        caller: CurrentCaller, profile_id: int, request: Request
    ) -> JSONResponse:
        # Checked before a byte of the body is stored.
        await run_in_threadpool(check_access, caller, profile_id)
        await run_in_threadpool(ctx.avatars.ensure_directory)
        partial = ctx.avatars.partial_path()
        try:
            received = await receive_file(
                request, "file", partial, ctx.settings.max_avatar_bytes, SNIFF_BYTES
            )
            content_type = await run_in_threadpool(attach, caller, profile_id, partial, received)
        finally:
            await run_in_threadpool(ctx.avatars.discard, partial)
        data = {"content_type": content_type, "size": received.size, "sha256": received.sha256}
        return envelope(ResponseCode.FileUploaded, "Avatar uploaded.", data)

    @router.get(
        "/{profile_id}/avatar",
        summary="Download a profile's avatar",
        responses=failures(404),
        openapi_extra=NEEDS_CALLER,
    )
    def download_avatar(caller: CurrentCaller, profile_id: int) -> FileResponse:
        with ctx.database.session() as session:
            profile = visible_profile(session, caller, profile_id)
            name, content_type = profile.avatar_file, profile.avatar_type
        if not name or not content_type:
            raise not_found()
        return FileResponse(
            ctx.avatars.path_of(name),
            media_type=content_type,
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"},
        )

    return router
