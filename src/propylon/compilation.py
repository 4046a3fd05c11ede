"""Whether the request path runs compiled (mypyc, see setup.py) or as plain Python.

Both behave the same; the compiled build spends about half the Python time per request.
"""

from __future__ import annotations

import importlib.machinery
import sys


def compiled_modules() -> list[str]:
    """The loaded ``propylon`` modules that run from a compiled extension."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == "propylon"
        and (getattr(module, "__file__", None) or "").endswith(suffixes)
    )


def describe() -> str:
    """One line for logs and ``--version``; imports the request path to find out."""
    import propylon.engine.gateway  # noqa: F401  (loads every module setup.py compiles)

    compiled = compiled_modules()
    if not compiled:
        return "request path: pure Python"
    return f"request path: compiled with mypyc ({len(compiled)} modules)"
