"""The one place where failures become envelope responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.codes import ResponseCode
from servicekit.envelope import ServiceError, envelope
from servicekit.validation import from_pydantic

log = logging.getLogger("servicekit.errors")

# Framework-raised HTTP errors (unknown path, wrong method, ...) mapped onto the code table.
_HTTP_CODES: dict[int, tuple[ResponseCode, str]] = {
    401: (ResponseCode.Unauthorized, "Authentication is required."),
    403: (ResponseCode.Restricted, "This action is not allowed."),
    404: (ResponseCode.ObjectNotFound, "Not found."),
    405: (ResponseCode.Restricted, "Method not allowed."),
    413: (ResponseCode.Restricted, "Request body too large."),
    415: (ResponseCode.Restricted, "Unsupported media type."),
}


async def _service_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return exc.response()


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return from_pydantic(exc.errors()).failure().response()


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, message = _HTTP_CODES.get(
        exc.status_code, (ResponseCode.UndefinedServerException, "Request failed.")
    )
    if exc.status_code >= 500:
        log.error("HTTP %s raised: %s", exc.status_code, exc.detail)
    return envelope(code, message, status=exc.status_code, headers=exc.headers)


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
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
