"""servicekit: the code table, validation conversion, unexpected errors."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from servicekit import ResponseCode
from servicekit.handlers import install_error_handlers
from servicekit.serving import ServiceThread
from servicekit.validation import FieldErrors, field_name, from_pydantic

from tests.services.client import ServiceClient


def test_the_seeds_code_table_is_kept() -> None:
    # New codes are added around it (docs/error-codes.md); no seed row changes meaning.
    table = {name: int(code) for name, code in ResponseCode.__members__.items()}
    assert (
        table.items()
        >= {
            "LoginSuccess": 200,
            "TokenRefreshed": 201,
            "TokenRevoked": 202,
            "DataFound": 203,
            "DataCreated": 204,
            "DataDeleted": 205,
            "DataUpdated": 206,
            "FileUploaded": 207,
            "BadLoginRequest": 400,
            "UserNotFound": 401,
            "BadTokenRequest": 402,
            "ValidationError": 403,
            "EmptySequence": 404,
            "Unauthorized": 405,
            "ObjectNotFound": 406,
            "ObjectNotUpdated": 407,
            "NotUnique": 408,
            "Restricted": 409,
            "UndefinedServerException": 500,
        }.items()
    )


def test_field_names_are_pascal_case() -> None:
    assert field_name(("body", "display_name")) == "DisplayName"
    assert field_name(("query", "page_size")) == "PageSize"
    assert field_name(("body", "items", 0, "name")) == "Items.Name"
    assert field_name(("body",)) == "Body"


def test_pydantic_errors_become_messages_once_per_field() -> None:
    errors = from_pydantic(
        [
            {"type": "missing", "loc": ("body", "username"), "msg": "", "input": None},
            {"type": "missing", "loc": ("body", "username"), "msg": "", "input": None},
            {
                "type": "string_too_long",
                "loc": ("body", "bio"),
                "msg": "",
                "input": "abcd",
                "ctx": {"max_length": 3},
            },
        ]
    )
    assert errors.as_dict() == {
        "Username": ["'Username' must not be empty."],
        "Bio": ["The length of 'Bio' must be 3 characters or fewer. You entered 4 characters."],
    }
    assert errors.message() == (
        "Validation failed: \n -- Username: 'Username' must not be empty. Severity: Error"
        "\n -- Bio: The length of 'Bio' must be 3 characters or fewer. You entered 4 characters."
        " Severity: Error"
    )


def test_empty_field_errors_are_falsy() -> None:
    assert not FieldErrors()


def test_unexpected_errors_are_logged_and_never_leaked(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("database password is hunter2")

    with caplog.at_level(logging.ERROR), ServiceThread(app) as service:
        reply = ServiceClient(service.url).get("/boom")
    assert reply.status == 500
    assert reply.json == {
        "code": 500,
        "codemessage": "UndefinedServerException",
        "message": "An unexpected error occurred.",
    }
    assert "hunter2" in caplog.text
