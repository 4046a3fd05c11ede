"""JSON as .NET's configuration reader accepts it: ``//`` and ``/* */`` comments and trailing
commas are allowed (Ocelot files, including the second seed's ``Routes.json``, use both).

Comments and trailing commas are overwritten with spaces rather than removed, so the line and
column of every remaining character are unchanged and parse errors still point at the file.
"""

from __future__ import annotations


def strip_comments(text: str) -> str:
    """``text`` with comments blanked out (newlines kept); an unclosed ``/*`` runs to the end."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = _skip_string(text, i)
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] not in "\r\n":
                out[i] = " "
                i += 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            end = text.find("*/", i + 2)
            stop = n if end < 0 else end + 2
            for j in range(i, stop):
                if text[j] not in "\r\n":
                    out[j] = " "
            i = stop
            continue
        i += 1
    return "".join(out)


def strip_trailing_commas(text: str) -> str:
    """``text`` with every comma that is followed (after whitespace) by ``}`` or ``]`` blanked.

    Expects comments to be gone already.
    """
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = _skip_string(text, i)
            continue
        if c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                out[i] = " "
        i += 1
    return "".join(out)


def relax(text: str) -> str:
    return strip_trailing_commas(strip_comments(text))


def _skip_string(text: str, start: int) -> int:
    """Index just past the string literal opening at ``start`` (or the end of an unclosed one,
    which the JSON parser then reports)."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"' or c in "\r\n":
            return i + 1
        i += 1
    return n
