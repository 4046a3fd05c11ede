"""A newcomer's first `make install` / `make run` prints propylon's own progress lines, not
setuptools' deprecation notices: each of the four projects is built the way pip builds an
editable install (setuptools' PEP 660 hook, in a fresh process) and its output is read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = {
    "propylon": ("pyproject.toml", "setup.py", "README.md", "src"),
    "services/servicekit": ("pyproject.toml", "servicekit"),
    "services/identity": ("pyproject.toml", "identity"),
    "services/profiles": ("pyproject.toml", "profiles"),
}

BUILD = """
import sys
from setuptools import build_meta
build_meta.build_editable(sys.argv[1])
"""


def _project_dir(name: str) -> Path:
    return ROOT if name == "propylon" else ROOT / name


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_metadata_is_current(name: str) -> None:
    data = tomllib.loads((_project_dir(name) / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"  # an SPDX expression, not a table
    assert "setuptools>=77" in data["build-system"]["requires"]


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_editable_build_prints_no_setuptools_notice(name: str, tmp_path: Path) -> None:
    # A copy: building writes egg-info and build/ next to the sources.
    source = tmp_path / "project"
    source.mkdir()
    for entry in PROJECTS[name]:
        origin = _project_dir(name) / entry
        if origin.is_dir():
            shutil.copytree(origin, source / entry, ignore=shutil.ignore_patterns("*.so"))
        else:
            shutil.copy2(origin, source / entry)
    out = tmp_path / "wheels"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", BUILD, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PROPYLON_PURE_PYTHON": "1"},
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed
    assert list(out.glob("*.whl")), printed
    # setuptools frames every notice (deprecations, "Editable installation.") with "!!".
    assert "!!" not in printed, printed
    assert "deprecated" not in printed.lower(), printed


WHEEL = """
import sys
from setuptools import build_meta
build_meta.build_wheel(sys.argv[1])
"""


def test_the_wheel_carries_the_dashboard_page(tmp_path: Path) -> None:
    import zipfile

    source = tmp_path / "project"
    source.mkdir()
    for entry in PROJECTS["propylon"]:
        origin = ROOT / entry
        if origin.is_dir():
            shutil.copytree(origin, source / entry, ignore=shutil.ignore_patterns("*.so"))
        else:
            shutil.copy2(origin, source / entry)
    out = tmp_path / "wheels"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", WHEEL, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PROPYLON_PURE_PYTHON": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        page = archive.read("propylon/admin/dashboard.html")
    assert page == (ROOT / "src/propylon/admin/dashboard.html").read_bytes()
