"""Request bodies. Constraint messages become the seed's validation shape (servicekit).

Every body refuses unknown fields (a `"role": "admin"` on registration is a 400, not a
silently dropped field) and text a database cannot store (servicekit.validation.RequestBody).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError
from servicekit.validation import RULE, RequestBody

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
PASSWORD_MIN = 8
PASSWORD_MAX = 128


def _username_rule(value: str) -> str:
    if not USERNAME_PATTERN.fullmatch(value):
        raise PydanticCustomError(
            RULE,
            "'Username' must be 3 to 32 characters: lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit.",
        )
    return value


def _password_rule(value: str) -> str:
    if len(value) < PASSWORD_MIN:
        raise PydanticCustomError(
            RULE,
            f"The length of 'Password' must be at least {PASSWORD_MIN} characters. "
            f"You entered {len(value)} characters.",
        )
    if not value.strip():
        raise PydanticCustomError(RULE, "'Password' must not be only whitespace.")
    return value


Username = Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_username_rule)]
# NIST SP 800-63B: length, no composition rules; the upper bound caps argon2 input.
NewPassword = Annotated[
    str, Field(min_length=1, max_length=PASSWORD_MAX), AfterValidator(_password_rule)
]
# Checking a password reveals no rules beyond "not empty": the policy is for choosing one.
GivenPassword = Annotated[str, Field(min_length=1, max_length=1024)]


def same_as_username(username: str, password: str) -> str | None:
    if password == username:
        return "'Password' must not be the same as 'Username'."
    return None


class NewUser(RequestBody):
    username: Username
    password: NewPassword


class Login(RequestBody):
    username: Annotated[str, Field(min_length=1, max_length=256)]
    password: GivenPassword


class RefreshTokenBody(RequestBody):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class RoleChange(RequestBody):
    role: Literal["user", "admin"]


class PasswordChange(RequestBody):
    current_password: GivenPassword
    new_password: NewPassword


class PasswordReset(RequestBody):
    password: NewPassword


class AccountDeletion(RequestBody):
    password: GivenPassword
