"""`GET /healthz`: readiness, meaning the database answers, its schema is at this code's
head, and every other dependency the service names answers too."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from servicekit.codes import ResponseCode
from servicekit.database import Database
from servicekit.envelope import ServiceError, envelope
from servicekit.migrations import SchemaCheck

log = logging.getLogger("servicekit.health")

# Returns None when the dependency is fine, else a short reason that names it.
ReadinessCheck = Callable[[], Awaitable[str | None]]


def _database_problem(database: Database, schema: SchemaCheck | None) -> str | None:
    try:
        with database.engine.connect() as connection:
            return schema.problem(connection) if schema else None
    except SQLAlchemyError as exc:
        log.warning("readiness: the database does not answer: %s", exc)
        return "the database is unavailable"


def health_router(
    database: Database,
    schema: SchemaCheck | None = None,
    checks: Sequence[ReadinessCheck] = (),
) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        summary="Readiness: the database answers at this version's schema, and so on",
        responses={503: {"description": "Not ready; `message` says why"}},
    )
    async def healthz() -> JSONResponse:
        problems = [await run_in_threadpool(_database_problem, database, schema)]
        problems += [await check() for check in checks]
        found = [p for p in problems if p]
        if found:
            reason = "; ".join(found)
            log.warning("not ready: %s", reason)
            raise ServiceError(503, ResponseCode.NotReady, f"Not ready: {reason}.")
        return envelope(ResponseCode.DataFound, "Service is ready.", {"status": "ready"})

    return router
