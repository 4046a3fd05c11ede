"""The access log's line spelling and its writer, on real files and pipes."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
from pathlib import Path

from propylon.config.access_log import read_access_log
from propylon.config.diagnostics import Diagnostics
from propylon.logs.formats import redact, timestamp
from propylon.logs.writer import LineWriter


def test_query_values_are_redacted_and_names_kept() -> None:
    assert redact(b"/a/b") == "/a/b"
    assert redact(b"/a?x=1&y=&z") == "/a?x=***&y=***&z"
    assert redact(b"/a?") == "/a?"


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
    assert writer._thread is not None and writer._atomic == select.PIPE_BUF
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
