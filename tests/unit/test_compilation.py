"""The build under test is the one users run: the request path compiled with mypyc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from propylon.compilation import compiled_modules, describe

ROOT = Path(__file__).resolve().parents[2]
SETUP = (ROOT / "setup.py").read_text()
PURE = (Path(sys.prefix) / ".pure-python").exists()


@pytest.mark.skipif(PURE, reason="installed as pure Python: no C compiler on this machine")
def test_every_module_setup_py_lists_runs_compiled() -> None:
    describe()  # imports the request path
    listed = {
        line.strip().strip('",').removeprefix("src/").removesuffix(".py").replace("/", ".")
        for line in SETUP.splitlines()
        if line.strip().startswith('"src/propylon/')
    }
    assert "propylon.engine.server" in listed
    assert listed <= set(compiled_modules())


def test_version_says_how_the_request_path_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "propylon", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("propylon ")
    expected = "pure Python" if PURE else "compiled with mypyc"
    assert expected in out
