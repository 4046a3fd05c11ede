"""The native format's ``ip_rules`` and ``cors`` sections, top level (every route's default)
and per route (replacing the default)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationError

from propylon.config.cors import CorsInput, cors_policy
from propylon.config.diagnostics import Diagnostics, Loc
from propylon.config.ip_rules import address_list
from propylon.config.model import CorsPolicy, IpRules
from propylon.config.native_settings import Strict, StrList

OFF = False
"""``cors: false`` on a route: no CORS there, whatever the top level says."""


class IpRulesSection(Strict):
    allow: StrList = []
    block: StrList = []
    exclude_allowed_from_blocked: bool = False


class CorsSection(Strict):
    origins: StrList
    methods: StrList | None = None
    headers: StrList | None = None
    expose_headers: StrList = []
    credentials: bool = False
    max_age: Annotated[int, Field(ge=0)] | None = None


def read_ip_rules(raw: object, loc: Loc, diag: Diagnostics) -> IpRules | None:
    """The rules at ``loc`` (None when absent, broken, or listing no address)."""
    if raw is None:
        return None
    try:
        section = IpRulesSection.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, loc, IpRulesSection)
        return None
    errors = len(diag.problems)
    allowed = address_list(section.allow, (*loc, "allow"), diag, host_bits_are_errors=True)
    blocked = address_list(section.block, (*loc, "block"), diag, host_bits_are_errors=True)
    if len(diag.problems) > errors:
        return None
    if not allowed and not blocked and section.exclude_allowed_from_blocked:
        diag.warning(
            (*loc, "exclude_allowed_from_blocked"), "has no effect without allow and block"
        )
    rules = IpRules(allowed, blocked, section.exclude_allowed_from_blocked)
    return rules if rules else None


def read_cors(raw: object, loc: Loc, diag: Diagnostics, *, route: bool) -> CorsPolicy | bool | None:
    """The policy at ``loc``; ``OFF`` for a route's ``cors: false``; None when absent or
    broken (its problems are reported)."""
    if raw is None:
        return None
    if raw is False and route:
        return OFF
    try:
        section = CorsSection.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, loc, CorsSection)
        return None

    def at(field: str, index: int | None) -> Loc:
        return (*loc, field) if index is None else (*loc, field, index)

    return cors_policy(
        CorsInput(
            origins=section.origins,
            methods=section.methods,
            headers=section.headers,
            expose_headers=section.expose_headers,
            credentials=section.credentials,
            max_age=section.max_age,
        ),
        lambda field, index, message: diag.error(at(field, index), message),
        lambda field, index, message: diag.warning(at(field, index), message),
    )
