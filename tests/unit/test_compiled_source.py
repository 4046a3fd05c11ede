"""Rules for the source of the modules setup.py compiles with mypyc, where compiled code
behaves differently from CPython's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def compiled_sources() -> list[Path]:
    listed = re.findall(r'"(src/propylon/[^"]+\.py)"', (ROOT / "setup.py").read_text())
    assert len(listed) > 30, "setup.py's COMPILED list was not found"
    return [ROOT / name for name in listed]


def test_no_compiled_coroutine_awaits_while_handling_an_exception() -> None:
    # CPython gives each coroutine its own "exception being handled"; mypyc's generated
    # coroutines do not swap it on suspension, so an await inside an except (or finally)
    # block leaves that exception set for the whole worker: every later exception chains
    # onto it, keeping its traceback and frames alive (seen in CI as KeyRefreshNeeded
    # chained onto an unrelated test's AssertionError).
    found = []
    for path in compiled_sources():
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if not isinstance(node, ast.Try):
                    continue
                blocks = [*(h.body for h in node.handlers), node.finalbody]
                for block in blocks:
                    for statement in block:
                        for inner in ast.walk(statement):
                            if isinstance(inner, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
                                found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert not found, f"await inside an except/finally block of compiled code: {found}"
