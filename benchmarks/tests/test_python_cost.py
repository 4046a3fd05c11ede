"""benchmarks/python_cost.py drives a real gateway in-process and reports every scenario."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "python_cost.py"


def test_the_driver_reports_a_cost_for_every_scenario() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--requests", "300", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("request path: ")
    costs = [re.search(r"([0-9.]+) us per request$", line) for line in lines[1:]]
    assert len(costs) == 14 and all(c is not None and float(c[1]) > 0 for c in costs)
