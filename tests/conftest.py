"""Every async test runs on uvloop: the loop the gateway runs on in production."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], object]]:
    return {"uvloop": uvloop.new_event_loop}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test old code: in this checkout the request path is compiled in place
    (setup.py), and a compiled module shadows its .py. ``make`` compiles again whenever a
    source changes; running pytest by hand after an edit would test the previous build."""
    root = Path(__file__).resolve().parent.parent
    stamp = root / ".venv" / ".compiled"
    if not stamp.exists() or not any((root / "src").rglob("*.so")):
        return  # not a make-built checkout, or a pure-Python one: nothing can shadow
    compiled_at = stamp.stat().st_mtime
    changed = [
        str(p.relative_to(root))
        for p in (root / "src" / "propylon").rglob("*.py")
        if p.stat().st_mtime > compiled_at
    ]
    if changed:
        pytest.exit(
            f"{', '.join(sorted(changed)[:5])} changed after the request path was compiled;"
            " run `make install` (or `make test`) to compile it again",
            returncode=4,
        )
