"""Validation failures in the second seed's exact shape.

    {"code": 403, "codemessage": "ValidationError",
     "message": "Validation failed: \\n -- Username: 'Username' must not be empty. Severity: Error",
     "data": {"Username": ["'Username' must not be empty."]}}

Field names are PascalCase and messages follow the FluentValidation wording the seed's
original service used. The seed's example lists every error twice in `message`; that is the
original validator running twice, so each error appears here once (`data` is unaffected).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from servicekit.codes import ResponseCode
from servicekit.envelope import ServiceError

# Error type for our own rules (raise PydanticCustomError(RULE, "'Username' ...")): the
# message is already in final form and is used verbatim.
RULE = "rule"

_WHOLE_BODY = "Body"
# Error type for text a database cannot store (NUL, lone surrogates); see RequestBody.
NOT_TEXT = "not_text"


def pascal_case(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


def field_name(loc: Sequence[int | str]) -> str:
    # loc is ("body" | "query" | "path" | "header", field, nested...): the source is dropped,
    # list indices are not names.
    names = [pascal_case(part) for part in loc[1:] if isinstance(part, str)]
    return ".".join(names) if names else _WHOLE_BODY


def _length(value: object) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


def message_for(field: str, error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == RULE:
        return str(error.get("msg", f"'{field}' is not valid."))
    if kind == "missing" or (kind == "string_too_short" and _length(value) == 0):
        return f"'{field}' must not be empty."
    if kind == "string_too_short":
        return (
            f"The length of '{field}' must be at least {ctx.get('min_length')} characters. "
            f"You entered {_length(value)} characters."
        )
    if kind == "string_too_long":
        return (
            f"The length of '{field}' must be {ctx.get('max_length')} characters or fewer. "
            f"You entered {_length(value)} characters."
        )
    simple = {
        "string_type": f"'{field}' must be a string.",
        "int_type": f"'{field}' must be a whole number.",
        "int_parsing": f"'{field}' must be a whole number.",
        "int_from_float": f"'{field}' must be a whole number.",
        "bool_type": f"'{field}' must be true or false.",
        "bool_parsing": f"'{field}' must be true or false.",
        "json_invalid": f"'{field}' must be valid JSON.",
        "model_attributes_type": f"'{field}' must be a JSON object.",
        "dict_type": f"'{field}' must be a JSON object.",
        "extra_forbidden": f"'{field}' is not a recognised field.",
        "string_pattern_mismatch": f"'{field}' is not in the correct format.",
        NOT_TEXT: f"'{field}' must not contain NUL characters or unpaired surrogates.",
        # pydantic's own refusal of a lone surrogate: the same fault, the same words.
        "string_unicode": f"'{field}' must not contain NUL characters or unpaired surrogates.",
    }
    if kind in simple:
        return simple[kind]
    bounds = {
        "greater_than_equal": ("greater than or equal to", "ge"),
        "less_than_equal": ("less than or equal to", "le"),
        "greater_than": ("greater than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"'{field}' must be {words} '{ctx.get(key)}'."
    if kind in ("literal_error", "enum"):
        return f"'{field}' must be one of: {ctx.get('expected')}."
    return f"'{field}' is not valid."


def storable_text(value: str) -> bool:
    """True when PostgreSQL (no NUL in text) and UTF-8 (no lone surrogates) can store it."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class RequestBody(BaseModel):
    """The base of every JSON request body: unknown fields are refused, not dropped (a
    `"role": "admin"` must not pass silently), and every string must be storable text, so
    bad input is a 400 in the seed's shape rather than a database error."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        if isinstance(value, str) and not storable_text(value):
            raise PydanticCustomError(NOT_TEXT, "not storable text")
        return value


class FieldErrors:
    """An ordered field -> messages map, built up and then raised as one failure."""

    def __init__(self) -> None:
        self._errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        messages = self._errors.setdefault(field, [])
        if message not in messages:
            messages.append(message)

    def __bool__(self) -> bool:
        return bool(self._errors)

    def as_dict(self) -> dict[str, list[str]]:
        return {field: list(messages) for field, messages in self._errors.items()}

    def failure(self, status: int = 400) -> ServiceError:
        return ServiceError(status, ResponseCode.ValidationError, self.message(), self.as_dict())

    def message(self) -> str:
        lines = "".join(
            f"\n -- {field}: {message} Severity: Error"
            for field, messages in self._errors.items()
            for message in messages
        )
        return f"Validation failed: {lines}"


def from_pydantic(errors: Iterable[Mapping[str, Any]]) -> FieldErrors:
    collected = FieldErrors()
    for error in errors:
        field = field_name(tuple(error.get("loc", ())))
        collected.add(field, message_for(field, error))
    return collected


def single_field_failure(field: str, message: str, status: int = 400) -> ServiceError:
    errors = FieldErrors()
    errors.add(field, message)
    return errors.failure(status)
