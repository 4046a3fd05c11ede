"""`GET /healthz`: readiness, meaning the database answers."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from servicekit.codes import ResponseCode
from servicekit.database import Database
from servicekit.envelope import ServiceError, envelope

log = logging.getLogger("servicekit.health")


def health_router(database: Database) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Readiness: the service and its database answer")
    def healthz() -> JSONResponse:
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("readiness check failed: %s", exc)
            raise ServiceError(
                503, ResponseCode.UndefinedServerException, "The database is unavailable."
            ) from None
        return envelope(ResponseCode.DataFound, "Service is ready.", {"status": "ready"})

    return router
