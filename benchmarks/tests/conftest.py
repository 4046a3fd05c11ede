"""The harness is imported as ``harness`` from benchmarks/, the way bench.py runs it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
