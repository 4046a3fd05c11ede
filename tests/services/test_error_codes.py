"""One code space: every envelope code that either side can produce is in
docs/error-codes.md, with one codemessage per code and one code per codemessage.

Each side contributes a function that yields (code, codemessage, side) for everything it can
put in an envelope, read from its code definitions (never a list kept by hand here):

- the services: `servicekit.codes.ResponseCode`, the only way a service builds an envelope;
- the gateway: the `propylon.errors.ErrorKind` values, each of which carries its table
  `code` (the gateway's half of issue 15, item 5).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servicekit.codes import ResponseCode

TABLE = Path(__file__).resolve().parents[2] / "docs" / "error-codes.md"
_ROW = re.compile(r"^\|\s*(\d{3})\s*\|\s*([A-Za-z]+)\s*\|\s*([^|]*)\|\s*([^|]*)\|")

Produced = tuple[int, str, str]  # (code, codemessage, side)


@dataclass(frozen=True, slots=True)
class Row:
    code: int
    codemessage: str
    http: str
    produced_by: str


def documented() -> list[Row]:
    rows = []
    for line in TABLE.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            code, name, http, by = match.groups()
            rows.append(Row(int(code), name, http.strip(), by.strip()))
    return rows


def service_codes() -> Iterator[Produced]:
    # __members__ includes aliases, so two names on one number would show up here too.
    for name, member in ResponseCode.__members__.items():
        yield int(member), name, "services"


def gateway_codes() -> Iterator[Produced]:
    from propylon import errors

    for value in vars(errors).values():
        if isinstance(value, errors.ErrorKind):
            yield value.code, value.codemessage, "gateway"


PRODUCERS: dict[str, Callable[[], Iterable[Produced]]] = {
    "services": service_codes,
    "gateway": gateway_codes,
}


def _one_to_one(pairs: Iterable[tuple[int, str]]) -> list[str]:
    names: dict[int, set[str]] = defaultdict(set)
    codes: dict[str, set[int]] = defaultdict(set)
    for code, name in pairs:
        names[code].add(name)
        codes[name].add(code)
    problems = [f"code {c} has names {sorted(n)}" for c, n in names.items() if len(n) > 1]
    problems += [f"{n} has codes {sorted(c)}" for n, c in codes.items() if len(c) > 1]
    return problems


def test_the_table_reads_back() -> None:
    rows = documented()
    assert len(rows) >= 30
    assert [r.code for r in rows] == sorted(r.code for r in rows)
    for row in rows:
        assert row.produced_by in {"services", "gateway", "both"}, row
        assert row.http == "-" or re.fullmatch(r"\d{3}(, \d{3})*", row.http), row


def test_the_table_has_one_name_per_code_and_one_code_per_name() -> None:
    rows = documented()
    assert _one_to_one((r.code, r.codemessage) for r in rows) == []
    assert len({r.code for r in rows}) == len(rows)


def test_no_two_meanings_across_both_sides() -> None:
    produced = [item for producer in PRODUCERS.values() for item in producer()]
    table = [(r.code, r.codemessage) for r in documented()]
    assert _one_to_one([(code, name) for code, name, _side in produced] + table) == []


@pytest.mark.parametrize("side", sorted(PRODUCERS))
def test_every_produced_code_is_in_the_table(side: str) -> None:
    produced = list(PRODUCERS[side]())
    # Both sides carry table codes: a side found to produce none means its scan broke, and
    # the checks below would pass on nothing.
    assert produced, f"no codes read from the {side}"
    rows = {r.code: r for r in documented()}
    missing = [(c, n) for c, n, _ in produced if c not in rows or rows[c].codemessage != n]
    assert missing == [], f"not in docs/error-codes.md: {missing}"
    for code, _name, _side in produced:
        assert rows[code].produced_by in (side, "both"), rows[code]


def test_the_seeds_rows_keep_their_meaning() -> None:
    seed = {
        200: "LoginSuccess", 201: "TokenRefreshed", 202: "TokenRevoked", 203: "DataFound",
        204: "DataCreated", 205: "DataDeleted", 206: "DataUpdated", 207: "FileUploaded",
        400: "BadLoginRequest", 401: "UserNotFound", 402: "BadTokenRequest",
        403: "ValidationError", 404: "EmptySequence", 405: "Unauthorized",
        406: "ObjectNotFound", 407: "ObjectNotUpdated", 408: "NotUnique", 409: "Restricted",
        500: "UndefinedServerException",
    }  # fmt: skip
    rows = {r.code: r.codemessage for r in documented()}
    assert {code: rows.get(code) for code in seed} == seed


def test_a_second_meaning_would_be_caught() -> None:
    # The checks above are only worth something if they can fail.
    assert _one_to_one([(404, "EmptySequence"), (404, "RouteNotFound")])
    assert _one_to_one([(405, "Unauthorized"), (401, "Unauthorized")])
