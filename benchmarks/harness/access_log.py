"""The ``access-log`` scenario's account: one line per request served, checked after the run.

The gateway writes ``access.log`` in its run folder (JSON lines, the default format) and is
stopped with SIGTERM, after which nothing may be missing. The lines then cover every request
it answered: wrk's counted ones (warm-up and measured), plus a few the harness made itself
(the readiness probe, the answer checks), plus the requests wrk had in flight when its time
was up, which the gateway still served and logged but wrk no longer counted (at most one per
connection and wrk run). Fewer lines than wrk counted, or more than all that explains, is a
run problem: the log lost lines, or logged something it should not have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "access.log"
HARNESS_REQUESTS = 8
"""At most this many requests of the harness's own per run (probe and checks: 1 to 4)."""
JSON_FIELDS = ("status", "method")
"""What the first line must have to count as the JSON format (its full schema is tested in
the gateway's own tests; this only catches the wrong format or an empty object)."""


@dataclass(frozen=True, slots=True)
class LineCount:
    lines: int
    problem: str
    """Empty when the lines match the requests."""


def account(path: Path, wrk_requests: int, wrk_runs: int, connections: int) -> LineCount:
    """Count ``path``'s lines against ``wrk_requests`` (over ``wrk_runs`` runs of wrk)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return LineCount(0, f"access log {path.name} unreadable: {exc.strerror}")
    lines = data.count(b"\n")
    if not data:
        return LineCount(0, f"access log {path.name} is empty")
    if data and not data.endswith(b"\n"):
        return LineCount(lines, f"access log {path.name} ends in a partial line")
    first = data[: data.find(b"\n")] if lines else b""
    try:
        record = json.loads(first)
    except ValueError:
        return LineCount(lines, f"access log's first line is not JSON: {first[:80]!r}")
    if not isinstance(record, dict) or not all(key in record for key in JSON_FIELDS):
        return LineCount(lines, f"access log's first line lacks {', '.join(JSON_FIELDS)}")
    most = wrk_requests + wrk_runs * connections + HARNESS_REQUESTS
    if lines < wrk_requests:
        return LineCount(lines, f"access log has {lines} lines for {wrk_requests} wrk requests")
    if lines > most:
        return LineCount(
            lines,
            f"access log has {lines} lines, more than {most} (wrk's {wrk_requests}, in flight, "
            "the harness's own)",
        )
    return LineCount(lines, "")
