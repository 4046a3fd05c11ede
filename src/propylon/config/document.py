"""Reading a config file into plain Python data, with positions for syntax errors.

``.json`` files are read as .NET reads them (comments and trailing commas allowed), ``.yaml``
and ``.yml`` as YAML; any other name is tried as JSON first, then YAML. A key written twice in
one mapping is an error: YAML and JSON parsers silently keep the last one, which is how a
second ``auth_required`` could quietly undo the first.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from propylon.config import jsonc
from propylon.config.diagnostics import Loc, render
from propylon.config.model import ConfigError, Problem


class KeyedDict(dict[Any, Any]):
    """A parsed mapping that remembers keys it saw more than once."""

    __slots__ = ("duplicates",)

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[Any] = []


@dataclass(frozen=True, slots=True)
class Document:
    file: str
    data: object
    syntax: str
    """``"json"`` or ``"yaml"``."""


def read_document(file: str) -> Document:
    """Parse ``file``; raises ConfigError naming the file (and line:column) when it cannot."""
    try:
        raw = Path(file).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([Problem(file, "", f"cannot read the file: {reason}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [Problem(file, "", f"not UTF-8 text (byte {exc.start} is invalid)")]
        ) from None
    return parse_text(file, text)


def parse_text(file: str, text: str) -> Document:
    suffix = Path(file).suffix.lower()
    if suffix == ".json":
        return Document(file, _parse_json(file, text), "json")
    if suffix in {".yaml", ".yml"}:
        return Document(file, _parse_yaml(file, text), "yaml")
    try:
        return Document(file, _parse_json(file, text), "json")
    except ConfigError:
        return Document(file, _parse_yaml(file, text), "yaml")


def duplicate_keys(document: Document) -> list[Problem]:
    return [
        Problem(document.file, render((*loc, str(key))), "key given more than once")
        for loc, key in _walk_duplicates(document.data, ())
    ]


def _walk_duplicates(value: object, loc: Loc) -> Iterator[tuple[Loc, object]]:
    if isinstance(value, KeyedDict):
        for key in value.duplicates:
            yield loc, key
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_duplicates(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_duplicates(item, (*loc, index))


def _parse_json(file: str, text: str) -> object:
    def pairs(items: list[tuple[str, Any]]) -> KeyedDict:
        mapping = KeyedDict()
        for key, value in items:
            if key in mapping:
                mapping.duplicates.append(key)
            mapping[key] = value
        return mapping

    def no_constants(name: str) -> object:
        raise ValueError(f"{name} is not a JSON value")

    try:
        return json.loads(jsonc.relax(text), object_pairs_hook=pairs, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [Problem(f"{file}:{exc.lineno}:{exc.colno}", "", f"invalid JSON: {exc.msg}")]
        ) from None
    except ValueError as exc:
        raise ConfigError([Problem(file, "", f"invalid JSON: {exc}")]) from None


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mappings record repeated keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[KeyedDict]:
    mapping = KeyedDict()
    yield mapping
    own_keys = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    merged = len(node.value) - own_keys
    own_seen: set[object] = set()
    for position, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            )
        # Keys pulled in by a ``<<`` merge may be overridden; only repeats of the file's own
        # keys are mistakes.
        if position >= merged:
            if key in own_seen:
                mapping.duplicates.append(key)
            own_seen.add(key)
        mapping[key] = loader.construct_object(value_node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _parse_yaml(file: str, text: str) -> object:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else file
        what = exc.problem or exc.context or "syntax error"
        raise ConfigError([Problem(where, "", f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, "", f"invalid YAML: {exc}")]) from None
