"""The response envelope: `{"code", "codemessage", "message"}` plus `"data"` when there is data.

Handlers return `envelope(...)` for success and raise `ServiceError` for failure; the
exception handlers in `servicekit.handlers` are the one place failures become responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from servicekit.codes import ResponseCode

_NO_DATA: Any = object()


def envelope_body(code: ResponseCode, message: str, data: Any = _NO_DATA) -> dict[str, Any]:
    body: dict[str, Any] = {"code": int(code), "codemessage": code.name, "message": message}
    if data is not _NO_DATA:
        body["data"] = jsonable_encoder(data)
    return body


def envelope(
    code: ResponseCode,
    message: str,
    data: Any = _NO_DATA,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        envelope_body(code, message, data),
        status_code=status,
        headers=dict(headers) if headers else None,
    )


class ServiceError(Exception):
    """A failure the client is meant to see: an HTTP status plus an envelope."""

    def __init__(
        self,
        status: int,
        code: ResponseCode,
        message: str,
        data: Any = _NO_DATA,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data
        self.headers = dict(headers) if headers else {}

    def response(self) -> JSONResponse:
        return envelope(
            self.code, self.message, self.data, status=self.status, headers=self.headers
        )
