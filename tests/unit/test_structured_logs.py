"""``--log-format json``: every line on stderr is a JSON record, a library's warnings too."""

from __future__ import annotations

import json
import subprocess
import sys

_PROGRAM = """
import logging, warnings
from propylon.logs.structured import configure
configure("json", "info")
logging.getLogger("propylon.test").info("ours")
warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
"""


def test_a_python_warning_is_a_json_record_like_the_gateways_own() -> None:
    # A subprocess: configure() sets the root logger and warning capture for the process.
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", _PROGRAM],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in done.stderr.splitlines()]
    ours, warning = records
    assert ours["message"] == "ours"
    assert warning["level"] == "WARNING" and warning["logger"] == "py.warnings"
    assert "DeprecationWarning: a library's deprecation" in warning["message"]
