import json
from pathlib import Path

from harness.access_log import HARNESS_REQUESTS, account


def write_lines(path: Path, count: int) -> Path:
    line = json.dumps({"status": 200, "method": "GET", "route": "/profiles/{id}"})
    path.write_text("".join(line + "\n" for _ in range(count)))
    return path


def test_lines_may_exceed_wrk_by_what_was_in_flight_and_the_harness_own(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "access.log", 1000 + 2 * 64 + HARNESS_REQUESTS)

    count = account(log, wrk_requests=1000, wrk_runs=2, connections=64)

    assert (count.lines, count.problem) == (1136, "")


def test_fewer_lines_than_wrk_counted_is_a_run_problem(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "access.log", 999)

    count = account(log, wrk_requests=1000, wrk_runs=1, connections=64)

    assert count.problem == "access log has 999 lines for 1000 wrk requests"


def test_more_lines_than_anything_explains_is_a_run_problem(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "access.log", 1000 + 64 + HARNESS_REQUESTS + 1)

    count = account(log, wrk_requests=1000, wrk_runs=1, connections=64)

    assert count.problem.startswith("access log has 1073 lines, more than 1072")


def test_a_log_that_is_not_json_lines_is_a_run_problem(tmp_path: Path) -> None:
    combined = tmp_path / "combined.log"
    combined.write_text('127.0.0.1 - - [01/May/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 2\n')
    partial = write_lines(tmp_path / "partial.log", 3)
    partial.write_text(partial.read_text() + '{"status": 2')

    assert "not JSON" in account(combined, 1, 1, 1).problem
    assert "partial line" in account(partial, 3, 1, 1).problem
    assert account(tmp_path / "missing.log", 1, 1, 1).problem.endswith(
        "unreadable: No such file or directory"
    )
