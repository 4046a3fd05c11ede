"""The services' OpenAPI documents what they really send.

FastAPI's generated document describes a 422 `HTTPValidationError` that these services never
send (validation failures are the seed's 400 shape) and leaves JSON responses without a
schema. `install_openapi` rewrites the document once: every JSON answer is the envelope,
every operation that takes input documents the 400 validation shape, and every operation
that needs a caller documents the header that names one (the gateway's `User` header, or
its signed `X-Gateway-Assertion` when verification is on) and its 401.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from servicekit.assertion import ASSERTION_HEADER
from servicekit.caller import CallerSource

# Put in a route's `openapi_extra`: the operation needs an identified caller.
NEEDS_CALLER: dict[str, Any] = {"x-servicekit-caller": True}
_MARKER = "x-servicekit-caller"

_DESCRIPTIONS = {
    400: "Bad request (envelope)",
    401: "No valid caller identity or credentials (envelope)",
    403: "Not allowed (envelope)",
    404: "Not found (envelope)",
    409: "Conflict (envelope)",
    413: "Too large (validation shape)",
    415: "Unsupported media type (validation shape)",
    429: "Throttled; `Retry-After` says when to try again (envelope)",
    503: "Busy or not ready; may carry `Retry-After` (envelope)",
}


class Envelope(BaseModel):
    """Every JSON body: the second seed's envelope (codes: docs/error-codes.md)."""

    code: int = Field(description="The envelope code (docs/error-codes.md), not the HTTP status")
    codemessage: str = Field(description="The code's one name")
    message: str
    data: Any = Field(default=None, description="Present when there is data")


class ValidationFailure(BaseModel):
    """A validation failure, always HTTP 400 unless noted (the second seed's shape)."""

    code: Literal[403]
    codemessage: Literal["ValidationError"]
    message: str = Field(
        examples=[
            "Validation failed: \n -- Username: 'Username' must not be empty. Severity: Error"
        ]
    )
    data: dict[str, list[str]] = Field(
        description="PascalCase field name -> messages",
        examples=[{"Username": ["'Username' must not be empty."]}],
    )


def failures(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these statuses answer with the envelope."""
    return {
        status: {"model": Envelope, "description": _DESCRIPTIONS[status]} for status in statuses
    }


def invalid(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these statuses answer with the validation shape."""
    return {
        status: {"model": ValidationFailure, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _caller_parameters(callers: CallerSource) -> list[dict[str, Any]]:
    if callers.verifies:
        return [
            {
                "name": ASSERTION_HEADER,
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "The gateway's signed assertion of the caller (EdDSA JWT); "
                "bare identity headers are ignored.",
            }
        ]
    parameters = [
        {
            "name": callers.user_header,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "The caller's username, set by the gateway from the verified "
            "token's subject (never by clients: the gateway removes their copies).",
        }
    ]
    if callers.role_header:
        parameters.append(
            {
                "name": callers.role_header,
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "The caller's role claim, set by the gateway; `admin` sees all.",
            }
        )
    return parameters


def _rewrite(schema: dict[str, Any], callers: CallerSource) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["Envelope"] = Envelope.model_json_schema(ref_template="#/components/schemas/{model}")
    components["ValidationFailure"] = ValidationFailure.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status, response in responses.items():
                content = response.get("content", {}).get("application/json")
                if status.startswith("2") and content is not None and not content.get("schema"):
                    content["schema"] = _ref("Envelope")
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault(
                    "400",
                    {"description": "Validation failed", "content": _json("ValidationFailure")},
                )
            if operation.pop(_MARKER, False):
                operation["parameters"] = [
                    *_caller_parameters(callers),
                    *operation.get("parameters", []),
                ]
                responses.setdefault(
                    "401", {"description": _DESCRIPTIONS[401], "content": _json("Envelope")}
                )


def install_openapi(app: FastAPI, callers: CallerSource) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _rewrite(schema, callers)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
