"""Request-path canonicalisation: the first security gate, before any route is matched.

The canonical path is what the router matches and what a route's downstream template is filled
from, so every way of spelling one path must come out as one string, and every spelling whose
meaning depends on who decodes it (an encoded ``/``, an encoded dot segment, ``..;``, a
backslash) is refused instead of guessed at. Nothing decoded here can add a separator or a dot
segment: only RFC 3986 unreserved characters are decoded, and an encoded dot that would form a
dot segment is an error, because a downstream that decodes once more would resolve it.
"""

from __future__ import annotations

import re

__all__ = ["PathRejected", "canonicalise"]

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789ABCDEFabcdef")

# Most request paths are already canonical; one C-level match proves it and skips the loop.
# Segments are non-empty (no "//"), never a dot segment (nor "..;x"), and made of unreserved
# characters, sub-delims, ":" and "@" only (no "%", so nothing to decode).
_ALREADY_CANONICAL = re.compile(r"(?:/(?!\.\.?(?:[/;]|$))[A-Za-z0-9\-._~!$&'()*+,;=:@]+)*/?")

# Raw characters refused anywhere: controls, space, DEL, non-ASCII, the backslash (some servers
# treat it as "/"), and "?"/"#", which cannot be part of a path and would end it downstream.
_FORBIDDEN_RAW = re.compile(r"[^\x21-\x7e]|[\\?#]")
_DOUBLE_ENCODED = re.compile(r"%25(?:2e|2f|5c)", re.IGNORECASE)


class PathRejected(ValueError):
    """The request path cannot be routed safely (-> 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        """Short, for logs only: never sent to the client."""


def canonicalise(raw_path: str, *, allow_double_encoding: bool = False) -> str:
    """The canonical form of ``raw_path`` (the path of the request target, still encoded).

    Unreserved escapes decoded and other escapes upper-cased; literal dot segments resolved;
    runs of ``/`` merged; a trailing slash kept. Raises ``PathRejected`` for anything that
    could be read differently by a downstream (see the module docstring), including, unless
    ``allow_double_encoding``, a double-encoded dot, slash or backslash (``%252e``,
    ``%252f``, ``%255c``): a downstream that decodes twice would read a dot segment or a
    separator there.
    """
    if _ALREADY_CANONICAL.fullmatch(raw_path) is not None:
        return raw_path or "/"
    if not raw_path:
        return "/"
    if raw_path[0] != "/":
        raise PathRejected("not an origin-form path")
    if _FORBIDDEN_RAW.search(raw_path) is not None:
        raise PathRejected("forbidden raw character")
    kept: list[str] = []
    ends_with_slash = False
    if not allow_double_encoding and _DOUBLE_ENCODED.search(raw_path) is not None:
        raise PathRejected("double-encoded dot, slash or backslash")
    for raw_segment in raw_path[1:].split("/"):
        segment, has_encoded_dot = _decode_segment(raw_segment)
        if not segment:
            ends_with_slash = True
            continue
        # Path parameters end a segment for Tomcat, Spring and Jetty, whether the ";" is
        # literal or encoded: "..%3Bx" is a ".." to them.
        base = segment.partition(";")[0].partition("%3B")[0]
        if base not in (".", ".."):
            kept.append(segment)
            ends_with_slash = False
            continue
        if has_encoded_dot:
            raise PathRejected("encoded dot segment")
        if len(base) != len(segment):
            raise PathRejected("dot segment with parameters")
        if base == "..":
            if not kept:
                raise PathRejected("climbs above the root")
            kept.pop()
        ends_with_slash = True
    if not kept:
        return "/"
    return "/" + "/".join(kept) + ("/" if ends_with_slash else "")


def _decode_segment(raw: str) -> tuple[str, bool]:
    """``raw`` with unreserved escapes decoded, and whether any of them was a dot."""
    if "%" not in raw:
        return raw, False
    first, *escaped = raw.split("%")
    out = [first]
    has_encoded_dot = False
    for chunk in escaped:
        hex_digits = chunk[:2]
        if len(hex_digits) != 2 or not _HEX.issuperset(hex_digits):
            raise PathRejected("malformed percent-escape")
        code = int(hex_digits, 16)
        if code < 0x20 or code == 0x7F:
            raise PathRejected("encoded control character")
        if code == 0x2F or code == 0x5C:
            raise PathRejected("encoded slash or backslash")
        char = chr(code)
        if char in _UNRESERVED:
            out.append(char)
            has_encoded_dot = has_encoded_dot or code == 0x2E
        else:
            out.append("%" + hex_digits.upper())
        out.append(chunk[2:])
    return "".join(out), has_encoded_dot
