"""The one place where failures become envelope responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.codes import ResponseCode
from servicekit.envelope import ServiceError, envelope
from servicekit.startup import StartupErrorReporter
from servicekit.validation import from_pydantic

log = logging.getLogger("servicekit.errors")

# Framework-raised HTTP errors (unknown path, wrong method, ...) mapped onto the code table.
_HTTP_CODES: dict[int, tuple[ResponseCode, str]] = {
    400: (ResponseCode.BadRequest, "The request is malformed."),
    401: (ResponseCode.Unauthorized, "Authentication is required."),
    403: (ResponseCode.Restricted, "This action is not allowed."),
    404: (ResponseCode.RouteNotFound, "No route matches this request."),
    405: (ResponseCode.MethodNotAllowed, "The route does not accept this method."),
    413: (ResponseCode.PayloadTooLarge, "The request body is too large."),
    415: (ResponseCode.UnsupportedMediaType, "The request body's media type is not accepted."),
}


async def _service_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return exc.response()


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return from_pydantic(exc.errors()).failure().response()


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    fallback = (
        (ResponseCode.UndefinedServerException, "Request failed.")
        if exc.status_code >= 500
        else (ResponseCode.BadRequest, "The request cannot be handled.")
    )
    code, message = _HTTP_CODES.get(exc.status_code, fallback)
    if exc.status_code >= 500:
        log.error("HTTP %s raised: %s", exc.status_code, exc.detail)
    return envelope(code, message, status=exc.status_code, headers=exc.headers)


# PostgreSQL's "undefined table" and "undefined column": a schema behind this code.
_SCHEMA_BEHIND = {"42P01", "42703"}


async def _database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if not isinstance(exc, OperationalError) and sqlstate not in _SCHEMA_BEHIND:
        return await _unexpected(request, exc)
    # The database went away, is locked past the busy timeout (SQLite), or lacks the tables
    # of an unmigrated schema: the service is not ready, which is no fault of the request,
    # and /healthz says the same. Logged in full, never echoed.
    log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
    return envelope(ResponseCode.NotReady, "The service's database is unavailable.", status=503)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Logged in full here, never echoed: the client learns only that it failed.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {
            "code": int(ResponseCode.UndefinedServerException),
            "codemessage": ResponseCode.UndefinedServerException.name,
            "message": "An unexpected error occurred.",
        },
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    # A refusal to start is one line in the log, not a traceback (servicekit.startup).
    app.add_middleware(StartupErrorReporter)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
