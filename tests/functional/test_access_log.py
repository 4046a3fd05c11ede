"""The access log: one line per request served, with what the gateway knew about it.

In-process tests drive a real gateway (native config file, real upstream, real sockets)
with its ``AccessLog`` writing a real file; process tests run ``propylon run`` with
``--access-log`` and its workers, signals and drain."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from propylon.config.loader import load_config
from propylon.engine.gateway import Gateway
from propylon.logs.access import AccessLog
from propylon.logs.formats import FIELDS
from tests.support.client import exchange_raw, request
from tests.support.gateway import SECRET, token
from tests.support.processes import gateway_process, ocelot_file
from tests.support.upstreams import RecordingUpstream, Seen, free_port

ENV = {"PROPYLON_JWT_SECRET": SECRET.decode()}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def native_file(
    tmp: Path, upstream: int, log: Path, fmt: str = "json", redact: bool = True
) -> Path:
    settings = f"path: {json.dumps(str(log))}, format: {fmt}, redact_query: {str(redact).lower()}"
    dead = free_port()  # nothing listens there: connections are refused
    path = tmp / "gateway.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            auth_providers:
              Bearer: {{secret_env: PROPYLON_JWT_SECRET, algorithms: [HS256]}}
            access_log: {{{settings}}}
            routes:
              - path: "/open/{{everything}}"
                downstream: {{hosts: ["127.0.0.1:{upstream}"], path: "/{{everything}}"}}
              - path: "/secure/{{everything}}"
                downstream: {{hosts: ["127.0.0.1:{upstream}"], path: "/{{everything}}"}}
                auth: {{providers: [Bearer]}}
                rate_limits: [{{limit: 2, per: 1h, key: [sub]}}]
              - path: /down
                downstream: {{hosts: ["127.0.0.1:{dead}"]}}
            """
        )
    )
    return path


@asynccontextmanager
async def logged_gateway(config: Path) -> AsyncIterator[tuple[Gateway, AccessLog]]:
    cfg = load_config(str(config), env=ENV)
    assert cfg.access_log is not None
    access = AccessLog(cfg.access_log, request_id_header=cfg.request_id_header)
    gateway = Gateway(cfg, access_log=access)
    access.start(asyncio.get_running_loop())
    await gateway.start("127.0.0.1", 0)
    try:
        yield gateway, access
    finally:
        await gateway.stop(drain_timeout=1.0)
        access.close()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_each_request_is_one_line_with_what_the_gateway_knew(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    log = tmp_path / "access.log"
    try:
        async with logged_gateway(native_file(tmp_path, up.port, log)) as (gateway, _access):
            port = gateway.port
            ok = await request(
                port,
                "GET",
                "/open/things?email=a@b.example&token=s3cret&flag",
                [("traceparent", TRACEPARENT), ("User-Agent", "probe/1.0")],
            )
            assert ok.status == 200
            posted = await request(port, "POST", "/open/items", body=b"x" * 123)
            assert posted.status == 200
            bearer = [("Authorization", f"Bearer {token('alice')}")]
            allowed = [await request(port, "GET", "/secure/me", bearer) for _ in range(2)]
            assert [r.status for r in allowed] == [200, 200]
            limited = await request(port, "GET", "/secure/me", bearer)
            assert limited.status == 429
            anonymous = await request(port, "GET", "/secure/me")
            assert anonymous.status == 401
            missing = await request(port, "GET", "/nowhere", [("X-Request-Id", "client-id-7")])
            assert missing.status == 404
            down = await request(port, "GET", "/down")
            assert down.status == 502
            responses, _raw, _closed = await exchange_raw(port, b"GARBAGE\r\n\r\n")
            assert [r.status for r in responses] == [400]
    finally:
        await up.close()
    entries = lines(log)
    # One line per request served, in order, every field present.
    assert [e["status"] for e in entries] == [200, 200, 200, 200, 429, 401, 404, 502, 400]
    assert all(list(e) == list(FIELDS) for e in entries)
    first = entries[0]
    assert first["path"] == "/open/things?email=***&token=***&flag"
    assert first["route"] == "/open/{everything}"
    assert first["method"] == "GET"
    assert first["client"] == "127.0.0.1"
    assert first["upstream"] == f"127.0.0.1:{up.port}"
    # The traceparent the upstream received: the client's trace, the gateway's span.
    assert first["traceparent"] == up.seen[0].header("traceparent")
    assert first["traceparent"][:36] == TRACEPARENT[:36]
    assert first["user_agent"] == "probe/1.0"
    assert first["request_id"] == ok.header("X-Request-Id")
    assert first["bytes_out"] == len(ok.body)
    assert first["duration_ms"] >= first["upstream_ms"] >= 0
    assert first["sub"] is None and first["rate_limit"] is None and first["error"] is None
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert entries[1]["bytes_in"] == 123 and entries[1]["method"] == "POST"
    assert [(e["sub"], e["rate_limit"]) for e in entries[2:5]] == [
        ("alice", "allowed"),
        ("alice", "allowed"),
        ("alice", "limited"),
    ]
    assert entries[4]["error"] == "RateLimited" and entries[4]["upstream"] is None
    assert entries[4]["request_id"] == limited.header("X-Request-Id")
    assert entries[4]["bytes_out"] == len(limited.body)
    # Authentication answered before the limit was judged: no decision.
    assert (entries[5]["sub"], entries[5]["rate_limit"], entries[5]["error"]) == (
        None,
        None,
        "Unauthorized",
    )
    assert entries[6]["route"] is None and entries[6]["error"] == "RouteNotFound"
    assert entries[6]["request_id"] == "client-id-7" and entries[6]["duration_ms"] is None
    assert entries[7]["error"] == "UpstreamUnavailable: refused"
    assert entries[7]["route"] == "/down" and entries[7]["upstream_ms"] is not None
    assert entries[8]["method"] is None and entries[8]["error"] == "BadRequest"


async def test_query_values_are_kept_when_redaction_is_off(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    log = tmp_path / "access.log"
    try:
        config = native_file(tmp_path, up.port, log, redact=False)
        async with logged_gateway(config) as (gateway, _access):
            assert (await request(gateway.port, "GET", "/open/a?q=visible")).status == 200
    finally:
        await up.close()
    assert lines(log)[0]["path"] == "/open/a?q=visible"


async def test_values_a_client_chose_are_escaped_and_each_line_parses(tmp_path: Path) -> None:
    # The line is spelt from fragments, not by a JSON encoder: what a client controls (the
    # User-Agent, the request id, the path, a token's sub) must still come out as one line
    # of valid JSON that reads back as sent.
    up = await RecordingUpstream().start()
    log = tmp_path / "access.log"
    agent = 'quo"te \\back\tslash été }{'.encode()  # UTF-8 bytes, logged as Latin-1
    sub = 'mallory", "status": 200, "x": "\\'
    try:
        async with logged_gateway(native_file(tmp_path, up.port, log)) as (gw, _access):
            head = (
                b"GET /open/caf%C3%A9/%22x%22?q=%7B%7D HTTP/1.1\r\nHost: x\r\n"
                b"User-Agent: " + agent + b"\r\n\r\n"
            )
            responses, _raw, _closed = await exchange_raw(gw.port, head)
            assert [r.status for r in responses] == [200]
            bearer = [("Authorization", f"Bearer {token(sub)}")]
            assert (await request(gw.port, "GET", "/secure/me", bearer)).status == 200
    finally:
        await up.close()
    raw = log.read_bytes().splitlines()
    assert len(raw) == 2
    first, second = (json.loads(line) for line in raw)
    assert first["user_agent"] == agent.decode("latin-1")
    assert first["path"] == "/open/caf%C3%A9/%22x%22?q=***"
    assert first["status"] == 200 and list(first) == list(FIELDS)
    assert second["sub"] == sub and second["status"] == 200


async def test_combined_format_is_apache_combined(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    log = tmp_path / "access.log"
    try:
        async with logged_gateway(native_file(tmp_path, up.port, log, "combined")) as (gw, _a):
            bearer = [
                ("Authorization", f"Bearer {token('bob')}"),
                ("Referer", "https://app.example/page"),
                ("User-Agent", 'quote"agent'),
            ]
            ok = await request(gw.port, "GET", "/secure/x?id=7", bearer)
            assert ok.status == 200
    finally:
        await up.close()
    (line,) = log.read_text().splitlines()
    head, _, rest = line.partition(" [")
    assert head == "127.0.0.1 - bob"
    stamp, _, request_part = rest.partition("] ")
    assert stamp.endswith(" +0000") and stamp.count(":") == 3
    assert request_part == (
        f'"GET /secure/x?id=*** HTTP/1.1" 200 {len(ok.body)} '
        '"https://app.example/page" "quote\\x22agent"'
    )


async def test_the_client_leaving_first_is_a_499_line(tmp_path: Path) -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def stall(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.json_response({})

    up = await RecordingUpstream(handler=stall).start()
    log = tmp_path / "access.log"
    try:
        async with logged_gateway(native_file(tmp_path, up.port, log)) as (gateway, _access):
            _reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            writer.write(b"GET /open/slow HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(arrived.wait(), 5)
            writer.close()
            await writer.wait_closed()
            for _ in range(200):  # the gateway sees the connection close (not the drain)
                if not gateway.connections:
                    break
                await asyncio.sleep(0.01)
            assert not gateway.connections
            release.set()
    finally:
        await up.close()
    (entry,) = lines(log)
    assert (entry["status"], entry["path"]) == (499, "/open/slow")


# -- the real process ------------------------------------------------------------------------


async def _load(port: int, count: int, concurrency: int) -> list[int]:
    """``count`` requests over ``concurrency`` keep-alive connections; the statuses of the
    responses that came back whole (a connection refused or cut counts nothing)."""
    statuses: list[int] = []

    async def worker(share: int) -> None:
        for _ in range(share):
            try:
                r = await request(port, "GET", "/api/load", timeout=10)
            except (OSError, AssertionError):
                # Refused, or reset from the listen queue once the listener closed: never
                # read by the gateway, so not served (and not logged).
                return
            if r.complete:
                statuses.append(r.status)

    await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
    return statuses


async def test_workers_share_one_file_and_sigterm_under_load_loses_nothing(
    tmp_path: Path,
) -> None:
    async def slowish(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        await asyncio.sleep(0.02)
        return web.json_response({"ok": True})

    up = await RecordingUpstream(handler=slowish).start()
    port = free_port()
    log = tmp_path / "access.log"
    try:
        args = ("--access-log", str(log))
        with gateway_process(ocelot_file(tmp_path, up.port), port, 2, args=args) as proc:
            load = asyncio.create_task(_load(port, 4000, 16))
            await asyncio.sleep(1.0)  # well into the load
            proc.send_signal(signal.SIGTERM)
            statuses = await load
            assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        await up.close()
    entries = lines(log)  # every line whole JSON: lines from two workers never interleave
    assert len(statuses) > 50, "the load never got going"
    counts = (len(entries), len(statuses), len(up.seen))
    assert counts[0] == counts[1] == counts[2], counts
    assert {e["worker"] for e in entries} == {0, 1}
    assert sorted(e["status"] for e in entries) == sorted(statuses)


async def test_sigusr1_reopens_the_file_after_rotation(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    port = free_port()
    log = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    try:
        args = ("--access-log", str(log))
        with gateway_process(ocelot_file(tmp_path, up.port), port, 2, args=args) as proc:
            for _ in range(10):
                assert (await request(port, "GET", "/api/before")).status == 200
            os.rename(log, rotated)  # what logrotate does, then it signals the main pid
            proc.send_signal(signal.SIGUSR1)
            for _ in range(200):  # each worker reopens within a moment
                if log.exists():
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            for _ in range(10):
                assert (await request(port, "GET", "/api/after")).status == 200
            assert proc.poll() is None, "SIGUSR1 must not stop the gateway"
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        await up.close()
    assert [e["path"] for e in lines(rotated)] == ["/api/before"] * 10
    assert [e["path"] for e in lines(log)] == ["/api/after"] * 10


def test_run_refuses_an_access_log_it_cannot_open(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = ocelot_file(tmp_path, 9)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    missing = tmp_path / "no-such-dir" / "access.log"

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "propylon", "run", "--config", str(config)]
        return subprocess.run(
            [*command, "--port", str(port), *extra],
            capture_output=True,
            text=True,
            timeout=30,
        )

    done = run("--access-log", str(missing))
    assert done.returncode == 2
    assert f"--access-log: error: cannot open the access log {missing}: No such file" in (
        done.stderr
    )
    done = run("--access-log-format", "combined")
    assert done.returncode == 2
    assert "--access-log-format: error: there is no access log to format" in done.stderr


async def test_after_a_reload_lines_name_the_routes_of_the_new_config(tmp_path: Path) -> None:
    # Route indexes move when a reload inserts a route: the log must not name a request's
    # route by its old index.
    up = await RecordingUpstream().start()
    log = tmp_path / "access.log"
    try:
        config = native_file(tmp_path, up.port, log)
        async with logged_gateway(config) as (gateway, _access):
            assert (await request(gateway.port, "GET", "/open/a")).status == 200
            text = config.read_text().replace(
                "routes:\n",
                f'routes:\n  - path: /first\n    downstream: {{hosts: ["127.0.0.1:{up.port}"]}}\n',
            )
            config.write_text(text)
            await gateway.reload(load_config(str(config), env=ENV))
            assert (await request(gateway.port, "GET", "/first")).status == 200
            assert (await request(gateway.port, "GET", "/open/b")).status == 200
    finally:
        await up.close()
    assert [e["route"] for e in lines(log)] == [
        "/open/{everything}",
        "/first",
        "/open/{everything}",
    ]
