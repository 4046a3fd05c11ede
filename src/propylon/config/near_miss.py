"""Which known key a misspelt one was meant to be.

A key is compared with the known keys of its object after folding case and dropping ``_``,
``-`` and spaces (so ``authentication_options`` is ``AuthenticationOptions``), by edit
distance (insertions, deletions, substitutions and swaps of neighbours): one edit for keys
of up to four letters, two up to twelve, three beyond. A singular or plural slip
(``AllowedScope``, ``RouteClaimRequirement``) is one edit.
"""

from __future__ import annotations

from collections.abc import Iterable


def fold(key: str) -> str:
    return "".join(c for c in key.casefold() if c not in "_- ")


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Damerau-Levenshtein without repeated edits)."""
    previous: list[int] | None = None
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous, row = previous, row, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if before is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], before[j - 2] + 1)
    return row[len(b)]


def _allowed(key: str) -> int:
    return 1 if len(key) <= 4 else 2 if len(key) <= 12 else 3


def closest(written: str, known: Iterable[str], *, prefer: Iterable[str] = ()) -> str | None:
    """The known key ``written`` is a near miss of, or None. Among equally close keys, one in
    ``prefer`` wins (a security key: the costlier one to miss), then the first given."""
    target = fold(written)
    preferred = set(prefer)
    best: tuple[int, int, str] | None = None
    for name in known:
        folded = fold(name)
        edits = distance(target, folded)
        if edits > _allowed(folded):
            continue
        rank = (edits, 0 if name in preferred else 1, name)
        if best is None or rank[:2] < best[:2]:
            best = rank
    return best[2] if best is not None else None
