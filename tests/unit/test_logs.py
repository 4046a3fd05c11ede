"""The access log's line spelling and its writer, on real files and pipes."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from propylon.config.access_log import read_access_log
from propylon.config.diagnostics import Diagnostics
from propylon.logs.formats import (
    FIELDS,
    json_fragment,
    json_inside,
    json_line,
    json_path,
    json_text,
    proxied_json_line,
    redact,
    timestamp,
)
from propylon.logs.writer import LineWriter


@settings(max_examples=300, deadline=None)
@given(target=st.binary(max_size=40) | st.just(b"/a?token=s3cret&b"), redact_query=st.booleans())
def test_the_path_in_a_line_is_redacted_and_escaped_in_one_step(
    target: bytes, redact_query: bool
) -> None:
    # One translate decides "plain and no query"; anything else takes the two steps.
    expected = json_text(redact(target) if redact_query else target)
    assert b'"' + json_path(target, redact_query) + b'"' == expected


def test_query_values_are_redacted_and_names_kept() -> None:
    assert redact(b"/a/b") == b"/a/b"
    assert redact(b"/a?x=1&y=&z") == b"/a?x=***&y=***&z"
    assert redact(b"/a?") == b"/a?"


def test_a_json_line_has_every_field_in_order_and_escapes_what_needs_it() -> None:
    unsafe = b'a"b\\c\x01\xe9\x7f'
    line = json_line(
        1_000_000_000.25,
        unsafe,
        "::1",
        b"GET",
        "/r/{id}",
        b"/r/1?x=***",
        200,
        3,
        4,
        0.0012344,
        None,
        "u:80",
        'su"b',
        None,
        None,
        None,
        None,
        7,
    )
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    entry = json.loads(line)
    assert list(entry) == list(FIELDS)
    assert entry["time"] == "2001-09-09T01:46:40.250Z"
    assert entry["request_id"] == unsafe.decode("latin-1")
    assert entry["duration_ms"] == 1.234 and entry["upstream_ms"] is None
    assert (entry["sub"], entry["worker"], entry["bytes_out"]) == ('su"b', 7, 4)
    assert json_text(b"plain/ascii") == b'"plain/ascii"'  # no encoder call for plain text


def test_timestamps_are_iso_utc_with_milliseconds() -> None:
    assert timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert timestamp(1_000_000_000.25) == "2001-09-09T01:46:40.250Z"
    assert timestamp(1_000_000_000.9996) == "2001-09-09T01:46:40.999Z"  # truncated


def test_the_native_block_is_checked_key_by_key() -> None:
    diag = Diagnostics("gateway.yaml")
    assert read_access_log({"path": "a.log", "format": "xml"}, diag) is None
    assert read_access_log({"path": " "}, diag) is None
    assert read_access_log({"path": "a.log", "redact": False}, diag) is None
    assert [(p.path, p.message.split(",")[0]) for p in diag.problems] == [
        ("access_log.format", "must be one of 'json' or 'combined'"),
        ("access_log.path", "must be a file path"),
        ("access_log.redact", "unknown key"),
    ]


async def test_a_pipe_gets_whole_lines_from_the_writer_thread(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = LineWriter(str(fifo))  # a pipe: written by its thread, PIPE_BUF at a time
    assert writer._writer_thread is not None and writer._atomic == select.PIPE_BUF
    writer.start(asyncio.get_running_loop())
    lines = [json.dumps({"n": i, "pad": "x" * (i % 300)}).encode() + b"\n" for i in range(2000)]
    for line in lines:  # far more than the pipe holds: the thread waits, the loop does not
        writer.write(line)
    chunks: list[bytes] = []

    async def drain() -> None:
        total = sum(map(len, lines))
        while sum(map(len, chunks)) < total:
            try:
                chunks.append(os.read(read_end, 1 << 20))
            except BlockingIOError:
                await asyncio.sleep(0.01)

    reader = asyncio.create_task(drain())
    await asyncio.to_thread(writer.close)
    await asyncio.wait_for(reader, 10)
    os.close(read_end)
    assert b"".join(chunks) == b"".join(lines)


def test_a_file_gets_every_line_at_close_and_reopen_follows_a_rename(tmp_path: Path) -> None:
    async def run() -> None:
        path = tmp_path / "access.log"
        writer = LineWriter(str(path), flush_interval=60)  # no tick: only close and reopen
        writer.start(asyncio.get_running_loop())
        writer.write(b"one\n")
        os.rename(path, tmp_path / "old.log")
        writer.reopen()
        writer.write(b"two\n")
        writer.close()
        assert (tmp_path / "old.log").read_bytes() == b"one\n"
        assert path.read_bytes() == b"two\n"

    asyncio.run(run())


def test_a_gateway_without_an_access_log_never_imports_it() -> None:
    probe = (
        "import sys; from propylon.cli import main; from propylon.engine import runner; "
        "print('propylon.logs.access' in sys.modules, 'propylon.logs.writer' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False"]


_BYTES = st.binary(max_size=40)
_TEXT = st.text(max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    request_id=_BYTES,
    path=_BYTES,
    sub=st.none() | _TEXT,
    error=st.none() | _TEXT,
    # What the gateway sent upstream: its own, or a client's it validated (tracing/context.py).
    traceparent=st.text("0123456789abcdef-", max_size=55).map(str.encode),
    user_agent=st.none() | _BYTES,
    numbers=st.tuples(*[st.integers(0, 10**7)] * 3),
    durations=st.tuples(*[st.floats(0, 100, allow_nan=False)] * 2),
    allowed=st.booleans(),
)
def test_the_proxied_line_is_the_general_line_and_reads_back_as_sent(
    request_id: bytes,
    path: bytes,
    sub: str | None,
    error: str | None,
    traceparent: bytes,
    user_agent: bytes | None,
    numbers: tuple[int, int, int],
    durations: tuple[float, float],
    allowed: bool,
) -> None:
    # Two builders spell a line: the proxied request's (facts it always has, pieces worked
    # out once) and every other answer's. Whatever a client sends, they must agree, and
    # the line must read back as the values it was given, on one line.
    status, received, sent = numbers
    took, upstream_took = durations
    rate_limit = "allowed" if allowed else None
    now = 1_700_000_000.5
    general = json_line(
        now, request_id, "::1", b"GET", "/r/{id}", path, status, received, sent, took,
        upstream_took, "u:80", sub, rate_limit, error, traceparent, user_agent, 3,
    )  # fmt: skip
    proxied = proxied_json_line(
        now, json_inside(request_id), "::1", b"GET", json_fragment("/r/{id}"),
        json_path(path, redact_query=False), status, received,
        sent, took, upstream_took, json_fragment("u:80"), sub, json_fragment(rate_limit),
        error, traceparent, user_agent, json_fragment(3),
    )  # fmt: skip
    assert proxied == general
    assert proxied.count(b"\n") == 1 and proxied.endswith(b"\n")
    entry = json.loads(proxied)
    assert list(entry) == list(FIELDS)
    latin = {"request_id": request_id, "path": path, "traceparent": traceparent}
    for name, value in {**latin, "user_agent": user_agent}.items():
        assert entry[name] == (value.decode("latin-1") if value is not None else None)
    assert (entry["sub"], entry["error"], entry["rate_limit"]) == (sub, error, rate_limit)
    assert (entry["status"], entry["bytes_in"], entry["bytes_out"]) == numbers
    # Whole microseconds, rounded to the nearest.
    assert abs(entry["duration_ms"] - took * 1000) <= 0.0005 + 1e-9
    assert abs(entry["upstream_ms"] - upstream_took * 1000) <= 0.0005 + 1e-9
