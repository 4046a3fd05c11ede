"""Durations written as text: Ocelot's ``Period``/``Wait`` and the native ``per``.

One grammar for both: a non-negative decimal number and a unit, ``ms``, ``s``, ``m``, ``h``
or ``d`` (any letter case): ``1s``, ``1.5m``, ``.4ms``, ``2.s``. Ocelot's run-time parser
reads a bare number as milliseconds (its start-up validation refuses a ``Period`` without a
unit); ``parse`` says whether the unit was given so each reader can decide. Anything else
(``1x``, ``1sec``, ``-1s``, ``1 s s``) is refused with a message, where Ocelot would fail the
request at run time.
"""

from __future__ import annotations

import re
from typing import Final

UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
EXPECTED = "a number and a unit: ms, s, m, h or d (e.g. 500ms, 1s, 1.5m, 1h, 1d)"


def parse(text: str) -> tuple[float, bool]:
    """(seconds, whether a unit was written); ValueError naming what is wrong."""
    match = _DURATION.fullmatch(text)
    if match is None:
        if text.strip().startswith("-"):
            raise ValueError(f"must not be negative, got {text!r}")
        raise ValueError(f"must be {EXPECTED}, got {text!r}")
    number, unit = match.groups()
    if unit and unit.lower() not in UNITS:
        raise ValueError(f"unknown unit {unit!r} in {text!r}: use ms, s, m, h or d")
    scale = UNITS[unit.lower()] if unit else UNITS["ms"]
    return float(number) * scale, bool(unit)


def seconds(value: object) -> float:
    """A native duration: a number of seconds, or text with a unit (``1s``, ``10m``)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as 1s or 1h, got {str(value).lower()}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"must be a finite number of seconds, got {value}")
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a duration such as 1s or 1h, got {type(value).__name__}")
    amount, with_unit = parse(value)
    if not with_unit:
        raise ValueError(f"needs a unit ({EXPECTED}); a bare number is seconds: {value!r}")
    return amount


def dotnet_number(value: float) -> str:
    """``value`` as .NET's invariant ``double.ToString()`` writes it for these magnitudes:
    ``1``, ``1.5``, ``0.2471``."""
    text = f"{value:.7f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
