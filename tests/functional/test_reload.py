"""Hot reload as a user drives it: `propylon run` as a real process, its config file rewritten,
then SIGHUP or `POST /reload`; traffic over real sockets to real upstreams."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import Response, request
from tests.support.processes import gateway_process
from tests.support.upstreams import RecordingUpstream, Seen, free_port


def _route(path: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"path": path, "downstream": {"hosts": [f"127.0.0.1:{port}"]}, **extra}


def _write(path: Path, *routes: dict[str, Any], **top: Any) -> Path:
    # JSON is YAML: the native format, written without a YAML emitter.
    path.write_text(json.dumps({"routes": list(routes), **top}))
    return path


async def _admin(port: int, path: str, method: str = "GET") -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"http://127.0.0.1:{port}{path}") as r,
    ):
        body = await r.read()
        if r.content_type == "application/json":
            return r.status, json.loads(body)
        return r.status, body.decode()


async def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            status, _ = await _admin(port, "/readyz")
        except aiohttp.ClientError:
            status = 0
        if status == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the admin listener never became ready")


async def _until(port: int, target: str, status: int) -> Response:
    """Poll until ``target`` answers ``status`` (a SIGHUP reload has no reply to wait on)."""
    deadline = time.monotonic() + 10
    while True:
        r = await request(port, "GET", target)
        if r.status == status or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.05)


def _metrics(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("propylon_config_"):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


async def test_sighup_applies_a_good_file_added_removed_and_modified_routes(
    tmp_path: Path,
) -> None:
    one, two = await RecordingUpstream().start(), await RecordingUpstream().start()
    port = free_port()
    config = _write(tmp_path / "gw.yaml", _route("/a", one.port), _route("/c", one.port))
    try:
        # One worker and no admin listener: the worker validates and swaps by itself.
        with gateway_process(config, port, workers=1) as proc:
            assert (await request(port, "GET", "/a")).status == 200
            _write(config, _route("/b", two.port), _route("/c", two.port))
            proc.send_signal(signal.SIGHUP)
            assert (await _until(port, "/b", 200)).status == 200
            assert two.last.path_qs == "/b"
            assert (await request(port, "GET", "/a")).status == 404
            before = len(two.seen)
            assert (await request(port, "GET", "/c")).status == 200
            assert len(two.seen) == before + 1 and two.last.path_qs == "/c"
            proc.send_signal(signal.SIGTERM)
            log = await asyncio.to_thread(lambda: proc.communicate(timeout=15)[0].decode())
        assert "added * /b; removed * /a; modified * /c" in log
    finally:
        await one.close()
        await two.close()


async def test_a_bad_file_keeps_the_old_config_and_says_why(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    port, admin = free_port(), free_port()
    config = _write(tmp_path / "gw.yaml", _route("/a", up.port))
    args = ("--admin", f"127.0.0.1:{admin}")
    try:
        with gateway_process(config, port, workers=1, args=args) as proc:
            await _wait_ready(admin)
            _write(config, _route("/a", up.port, timeout=-1), _route("/new", up.port))
            status, body = await _admin(admin, "/reload", "POST")
            assert status == 400
            assert body["code"] == 526 and body["codemessage"] == "ConfigRejected"
            assert body["data"]["result"] == "failure"
            assert body["data"]["problems"] == [
                f"{config}: routes[0].timeout: error: "
                "timeout must be a positive number of seconds, got -1.0"
            ]
            # The old config serves; the gateway is still ready and says what failed.
            assert (await request(port, "GET", "/a")).status == 200
            assert (await request(port, "GET", "/new")).status == 404
            status, ready = await _admin(admin, "/readyz")
            assert status == 200 and ready["ready"] is True
            assert "routes[0].timeout" in ready["last_reload_error"]
            _status, text = await _admin(admin, "/metrics")
            metrics = _metrics(text)
            assert metrics["propylon_config_reloads_total{result=failure}"] == 1
            assert metrics["propylon_config_reloads_total{result=success}"] == 0
            assert metrics["propylon_config_last_reload_success"] == 0

            # A SIGHUP with the same bad file: counted too, still serving.
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            failures = 1.0
            while failures != 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                metrics = _metrics((await _admin(admin, "/metrics"))[1])
                failures = metrics["propylon_config_reloads_total{result=failure}"]
            assert failures == 2
            assert (await request(port, "GET", "/a")).status == 200

            _write(config, _route("/a", up.port), _route("/new", up.port))
            status, body = await _admin(admin, "/reload", "POST")
            assert status == 200, body
            assert body["result"] == "ok"
            assert body["added"] == ["* /new"]
            assert body["removed"] == [] and body["modified"] == []
            assert (await request(port, "GET", "/new")).status == 200
            status, ready = await _admin(admin, "/readyz")
            assert ready["last_reload_error"] is None
            metrics = _metrics((await _admin(admin, "/metrics"))[1])
            assert metrics["propylon_config_reloads_total{result=success}"] == 1
            assert metrics["propylon_config_last_reload_success"] == 1
            assert metrics["propylon_config_last_reload_success_timestamp_seconds"] > 0
            # The admin listener shows the config now serving.
            _status, routes = await _admin(admin, "/routes")
            assert sorted(r["source"] for r in routes["routes"]) == ["routes[0]", "routes[1]"]
    finally:
        await up.close()


async def test_a_request_in_flight_on_a_removed_route_completes(tmp_path: Path) -> None:
    slow = await RecordingUpstream().start()
    arrived = asyncio.Event()

    async def answer_slowly(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        arrived.set()
        await asyncio.sleep(1.5)
        return web.json_response({"slow": True})

    slow.handler = answer_slowly
    other = await RecordingUpstream().start()
    port, admin = free_port(), free_port()
    config = _write(tmp_path / "gw.yaml", _route("/slow", slow.port), _route("/b", other.port))
    try:
        with gateway_process(config, port, workers=1, args=("--admin", f"127.0.0.1:{admin}")):
            await _wait_ready(admin)
            in_flight = asyncio.create_task(request(port, "GET", "/slow", timeout=10))
            await asyncio.wait_for(arrived.wait(), 5)
            _write(config, _route("/b", other.port))
            status, body = await _admin(admin, "/reload", "POST")
            assert status == 200 and body["removed"] == ["* /slow"]
            assert not in_flight.done()  # the reload did not wait for it, nor cut it
            assert (await request(port, "GET", "/slow")).status == 404
            r = await in_flight
            assert r.status == 200 and r.json() == {"slow": True}
            assert (await request(port, "GET", "/b")).status == 200
    finally:
        await slow.close()
        await other.close()


async def test_two_workers_both_switch(tmp_path: Path) -> None:
    one, two = await RecordingUpstream().start(), await RecordingUpstream().start()
    port, admin = free_port(), free_port()
    config = _write(tmp_path / "gw.yaml", _route("/a", one.port))
    try:
        with gateway_process(config, port, workers=2, args=("--admin", f"127.0.0.1:{admin}")):
            await _wait_ready(admin)
            _write(config, _route("/a", two.port))
            status, body = await _admin(admin, "/reload", "POST")
            assert status == 200, body
            assert body["modified"] == ["* /a"]
            assert {w["worker"] for w in body["workers"]} == {0, 1}
            assert len({w["digest"] for w in body["workers"]}) == 1
            served = len(one.seen)
            # Each request on a fresh connection: the kernel spreads them over both workers.
            for _ in range(40):
                assert (await request(port, "GET", "/a")).status == 200
            assert len(one.seen) == served
            assert len(two.seen) == 40
            _status, stats = await _admin(admin, "/stats")
            assert stats["workers"] == 2
    finally:
        await one.close()
        await two.close()


async def test_a_listen_change_is_reported_as_needing_a_restart(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    port, admin, elsewhere = free_port(), free_port(), free_port()
    config = _write(
        tmp_path / "gw.yaml", _route("/a", up.port), admin={"listen": f"127.0.0.1:{admin}"}
    )
    try:
        with gateway_process(config, port, workers=1):
            await _wait_ready(admin)
            _write(
                config,
                _route("/a", up.port),
                _route("/b", up.port),
                admin={"listen": f"127.0.0.1:{elsewhere}"},
            )
            status, body = await _admin(admin, "/reload", "POST")
            assert status == 200, body
            assert body["needs_restart"] == [
                f"admin.listen: 127.0.0.1:{admin} -> 127.0.0.1:{elsewhere} needs a restart"
            ]
            assert body["added"] == ["* /b"]  # the rest is applied
            assert (await request(port, "GET", "/b")).status == 200
            assert (await _admin(admin, "/healthz"))[0] == 200  # still where it was
    finally:
        await up.close()


def test_the_reload_record_is_private(tmp_path: Path) -> None:
    """The run directory's reload files are written mode 0600, like every other file there."""
    from propylon.config.source import ConfigSource
    from propylon.engine.reload import RECORD, Reloader

    config = _write(tmp_path / "gw.yaml", _route("/a", 9))
    source = ConfigSource(str(config))
    loaded = source.load(os.environ)
    Reloader(source, loaded.config, loaded.digest, os.environ, str(tmp_path))
    assert (tmp_path / RECORD).stat().st_mode & 0o777 == 0o600


async def test_watch_config_reloads_when_the_file_changes(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    port, admin = free_port(), free_port()
    config = _write(tmp_path / "gw.yaml", _route("/a", up.port))
    args = ("--watch-config", "--admin", f"127.0.0.1:{admin}")
    try:
        with gateway_process(config, port, workers=2, args=args):
            await _wait_ready(admin)
            # Another file of the directory changing reloads nothing.
            (tmp_path / "notes.txt").write_text("unrelated")
            # As an editor saves: a temporary file, renamed over the config.
            _write(tmp_path / "gw.yaml.tmp", _route("/a", up.port), _route("/b", up.port))
            os.replace(tmp_path / "gw.yaml.tmp", config)
            assert (await _until(port, "/b", 200)).status == 200
            _status, ready = await _admin(admin, "/readyz")
            assert ready["last_reload"]["added"] == ["* /b"]
            assert ready["last_reload"]["successes"] == 1  # one change, one reload
            # Written in place with a mistake: reported, the old config still serves.
            config.write_text(json.dumps({"routes": [_route("/a", up.port, timeout=0)]}))
            deadline = time.monotonic() + 10
            while ready["last_reload_error"] is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                _status, ready = await _admin(admin, "/readyz")
            assert "routes[0].timeout" in ready["last_reload_error"]
            assert (await request(port, "GET", "/b")).status == 200
    finally:
        await up.close()


async def test_watch_config_with_one_worker_and_no_admin_listener(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    port = free_port()
    config = _write(tmp_path / "gw.yaml", _route("/a", up.port))
    try:
        with gateway_process(config, port, workers=1, args=("--watch-config",)) as proc:
            _write(config, _route("/b", up.port))
            assert (await _until(port, "/b", 200)).status == 200
            assert (await request(port, "GET", "/a")).status == 404
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        await up.close()
