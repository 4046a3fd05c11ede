""".NET composite format strings (``string.Format``), as Ocelot's ``QuotaMessage`` uses them.

``{0}`` and ``{1}`` are replaced (optionally ``{0,5}`` / ``{0,-5}``: right or left aligned
in five characters), ``{{`` and ``}}`` are literal braces. A format part (``{0:N0}``) is
refused rather than half-implemented, and so is any other index or a lone brace: .NET would
throw ``FormatException`` for those at the moment of the first rejected request; here
``propylon check`` reports them.
"""

from __future__ import annotations

import re

_ITEM = re.compile(r"(\d+)\s*(?:,\s*(-?\d+))?\s*(:[^}]*)?")


def render(template: str, args: tuple[str, ...]) -> str:
    """``template`` with its items replaced by ``args``; ValueError on a bad template."""
    out: list[str] = []
    i = 0
    size = len(template)
    while i < size:
        char = template[i]
        if char == "{":
            if template.startswith("{{", i):
                out.append("{")
                i += 2
                continue
            end = template.find("}", i)
            if end < 0:
                raise ValueError(
                    f"a '{{' at position {i} is never closed (write '{{{{' for a brace)"
                )
            item = _ITEM.fullmatch(template[i + 1 : end].strip())
            if item is None:
                raise ValueError(f"{template[i : end + 1]!r} is not a format item such as {{0}}")
            index, width, spec = item.groups()
            if spec is not None:
                raise ValueError(
                    f"format parts such as {template[i : end + 1]!r} are not supported"
                )
            if int(index) >= len(args):
                shown = template[i : end + 1]
                raise ValueError(f"{shown!r}: only {{0}} (the limit) and {{1}} (the period) exist")
            value = args[int(index)]
            if width is not None:
                amount = int(width)
                value = value.ljust(-amount) if amount < 0 else value.rjust(amount)
            out.append(value)
            i = end + 1
        elif char == "}":
            if not template.startswith("}}", i):
                raise ValueError(f"a lone '}}' at position {i} (write '}}}}' for a brace)")
            out.append("}")
            i += 2
        else:
            j = i
            while j < size and template[j] not in "{}":
                j += 1
            out.append(template[i:j])
            i = j
    return "".join(out)
