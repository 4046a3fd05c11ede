"""Problems with key paths written the way the file writes its keys.

A location is a tuple of keys and list indexes (``("Routes", 3, "DownstreamHostAndPorts", 0,
"Port")``). Readers that normalise key spelling (Ocelot's keys are case-insensitive) record
how each key was written, so ``Routes[3].downstreamHostAndPorts[0].port`` is reported as the
user typed it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from propylon.config import near_miss
from propylon.config.model import Problem

Loc = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


def render(loc: Loc, spelling: Mapping[Loc, str] | None = None) -> str:
    parts: list[str] = []
    for i, element in enumerate(loc):
        if isinstance(element, int):
            parts.append(f"[{element}]")
            continue
        name = spelling.get(loc[: i + 1], element) if spelling else element
        if _PLAIN_KEY.fullmatch(name):
            parts.append(f".{name}" if parts else name)
        else:
            parts.append(f"[{json.dumps(name)}]")
    return "".join(parts)


def describe(value: object) -> str:
    """A short rendering of a config value for messages."""
    if value is None or isinstance(value, str | bool | int | float):
        shown = json.dumps(value)
    elif isinstance(value, Mapping):
        shown = "a mapping"
    elif isinstance(value, list | tuple):
        shown = "a list"
    else:
        shown = type(value).__name__
    return shown if len(shown) <= 60 else shown[:57] + '..."'


def kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


class Diagnostics:
    """Collects every problem of one file instead of stopping at the first."""

    def __init__(self, file: str, spelling: Mapping[Loc, str] | None = None) -> None:
        self.file = file
        self.spelling: Mapping[Loc, str] = spelling if spelling is not None else {}
        self.problems: list[Problem] = []

    def path(self, loc: Loc) -> str:
        return render(loc, self.spelling)

    def error(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(self.file, self.path(loc), message, "error"))

    def warning(self, loc: Loc, message: str, *, security: bool = False) -> None:
        self.problems.append(Problem(self.file, self.path(loc), message, "warning", security))

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def validation(
        self, exc: ValidationError, base: Loc = (), model: type[BaseModel] | None = None
    ) -> None:
        """Translate pydantic's errors into problems at their key paths. With the ``model``
        that was validated, an unknown key also says which known key it resembles."""
        for err in exc.errors(include_url=False):
            inner = tuple(e for e in err["loc"] if e != "[key]")
            message = _message(err)
            if err["type"] == "extra_forbidden" and model is not None and inner:
                known = keys_at(model, inner[:-1])
                guess = near_miss.closest(str(inner[-1]), known) if known else None
                if guess is not None:
                    message += f"; did you mean {guess}?"
            self.error(base + inner, message)


def keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the object at ``loc`` inside ``model`` may have (empty when unknown)."""
    current: Any = model
    for element in loc:
        if isinstance(element, int):
            continue  # a list item: the same model as its list
        found = _model_of(current)
        field = found.model_fields.get(element) if found is not None else None
        if field is None:
            return []
        current = field.annotation
    last = _model_of(current)
    return list(last.model_fields) if last is not None else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``M``, ``M | None``, ``list[M]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _message(err: Any) -> str:
    kind: str = err["type"]
    value = err.get("input")
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    got = (
        f"got {describe(value)}"
        if not isinstance(value, Mapping | list)
        else (f"got {kind_of(value)}")
    )
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in {"string_type", "string_sub_type"}:
        return f"must be a string, {got}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"must be an integer, {got}"
    if kind in {"float_type", "float_parsing", "finite_number"}:
        return f"must be a number, {got}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"must be true or false, {got}"
    if kind in {"list_type", "tuple_type"}:
        return f"must be a list, {got}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"must be a mapping, {got}"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        op = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        bound = next(iter(ctx.values()), "?")
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {op} {bound}, {got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}, {got}"
    if kind == "value_error":
        error = ctx.get("error")
        return str(error) if error is not None else str(err["msg"])
    return str(err["msg"])
