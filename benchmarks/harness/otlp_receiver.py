"""The ``tracing-export`` scenario's collector: a real OTLP/HTTP trace receiver in its own
process, which decodes and counts what the gateway exports.

    cd benchmarks && python -m harness.otlp_receiver --port-file FILE   # the server

It listens on 127.0.0.1 (a free port, written to FILE once it listens), answers
``POST /v1/traces`` with 200 and an empty ``ExportTraceServiceResponse`` after decoding the
body as an ``ExportTraceServiceRequest`` and counting its spans (a body that does not decode
gets 400 and is counted apart), and ``GET /counts`` with its counters as JSON. It does what a
collector must do to accept spans and nothing more (no storage, no batching), so what it costs
is the decoding, as in a real one.

It runs as a separate process, pinned with U and the load generator (not on the proxy's CPU):
the gateway's exporter must pay for sending, not for a receiver sharing its core. It needs the
``opentelemetry-proto`` package, which the ``[otlp]`` extra installs (``make install``); the
harness imports this module for ``Receiver`` only, so the protobuf modules are imported by the
server process alone. Nothing here comes from tests/ (tests/support/otlp.py is the test
suite's receiver, an in-process aiohttp app).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.probe import request
from harness.processes import CLOCK_TICKS, ProcessGroup

BENCH_DIR = Path(__file__).resolve().parent.parent
PROTO_MODULE = "opentelemetry.proto.collector.trace.v1.trace_service_pb2"
TRACES_PATH = "/v1/traces"
COUNTS_PATH = "/counts"
START_TIMEOUT = 15.0
MAX_BODY_BYTES = 64 * 1024 * 1024
"""A bigger body is refused (413): the exporter sends batches of a few hundred spans."""


@dataclass(frozen=True, slots=True)
class ReceiverCounts:
    posts: int
    """Export requests answered 200."""
    spans: int
    rejected: int
    """Requests that were not a decodable ExportTraceServiceRequest (answered 4xx)."""


def proto_available() -> bool:
    """True when the server can decode OTLP (the ``[otlp]`` extra is installed)."""
    try:
        return importlib.util.find_spec(PROTO_MODULE) is not None
    except ModuleNotFoundError:
        return False


class Receiver:
    """The server process, seen from the harness: start, ask for counts, stop."""

    def __init__(self, group: ProcessGroup, port: int) -> None:
        self.group = group
        self.port = port

    @classmethod
    def start(
        cls, run_dir: Path, cpus: str, env: Mapping[str, str], log_path: Path
    ) -> Receiver | str:
        """A receiver answering ``GET /counts``, or why none started (it is then stopped)."""
        port_file = run_dir / "otlp-receiver.port"
        port_file.unlink(missing_ok=True)
        # -m from benchmarks/: the server imports ``harness`` as bench.py does.
        command = (
            f"cd {shlex.quote(str(BENCH_DIR))} && exec {shlex.quote(sys.executable)} "
            f"-m harness.otlp_receiver --port-file {shlex.quote(str(port_file))}"
        )
        group = ProcessGroup("otlp-receiver", command, cpus, env, log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and group.running():
            if port_file.exists():
                receiver = cls(group, int(port_file.read_text()))
                if receiver.counts() is not None:
                    return receiver
            time.sleep(0.05)
        group.stop()
        return f"the OTLP receiver did not start; see logs/{log_path.name}"

    @property
    def traces_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TRACES_PATH}"

    def counts(self) -> ReceiverCounts | None:
        answer = request(self.port, COUNTS_PATH, timeout=5.0)
        if answer is None or answer.status != 200:
            return None
        values = json.loads(answer.body)
        return ReceiverCounts(values["posts"], values["spans"], values["rejected"])

    def cpu_seconds(self) -> float:
        return sum(self.group.cpu_ticks()) / CLOCK_TICKS

    def stop(self) -> None:
        self.group.stop()


# -- the server process --------------------------------------------------------------------


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts = 0
        self.spans = 0
        self.rejected = 0

    def as_json(self) -> bytes:
        with self.lock:
            values = {"posts": self.posts, "spans": self.spans, "rejected": self.rejected}
        return json.dumps(values).encode()


def _handler(counters: _Counters) -> type[BaseHTTPRequestHandler]:
    # Imported here: the harness imports this module without the [otlp] extra installed.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    empty_response = ExportTraceServiceResponse().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1: the exporter keeps its connection (requests.Session) between batches.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path != TRACES_PATH:
                self._answer(404, b"", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self._reject(413)
                return
            body = self.rfile.read(length)
            try:
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
            except Exception:  # a body that is no OTLP message, whatever the decoder says
                self._reject(400)
                return
            spans = sum(
                len(scope.spans) for batch in message.resource_spans for scope in batch.scope_spans
            )
            with counters.lock:
                counters.posts += 1
                counters.spans += spans
            self._answer(200, empty_response, "application/x-protobuf")

        def do_GET(self) -> None:
            if self.path == COUNTS_PATH:
                self._answer(200, counters.as_json(), "application/json")
            else:
                self._answer(404, b"", "text/plain")

        def _reject(self, status: int) -> None:
            with counters.lock:
                counters.rejected += 1
            self._answer(status, b"", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per batch would say nothing the counters do not

    return Handler


def _stop(signum: int, _frame: object) -> None:
    # SIGTERM (the harness stopping the group) ends serve_forever, so the counts are logged.
    raise SystemExit(128 + signum)


def serve(port_file: Path) -> None:
    signal.signal(signal.SIGTERM, _stop)
    counters = _Counters()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(counters))
    server.daemon_threads = True
    # Written whole, then renamed: the harness never reads half a number.
    partial = port_file.with_suffix(".partial")
    partial.write_text(str(server.server_address[1]))
    os.replace(partial, port_file)
    print(f"otlp receiver on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        print(f"otlp receiver counts: {counters.as_json().decode()}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="OTLP/HTTP trace receiver that counts spans")
    ap.add_argument("--port-file", type=Path, required=True)
    args = ap.parse_args()
    serve(args.port_file)


if __name__ == "__main__":
    main()
