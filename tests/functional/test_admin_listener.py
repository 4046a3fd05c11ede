"""The operations listener, as a user runs it: `propylon run --admin HOST:PORT` as a real
process, scraped over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from servicekit.assertion import AssertionVerifier, JwksUrlKeys

from propylon.auth.assertion import load_or_create_key
from propylon.config.loader import load_config
from propylon.config.route_table import table_rows
from tests.support.client import request
from tests.support.gateway import SECRET, token
from tests.support.processes import gateway_process, ocelot_file
from tests.support.upstreams import RecordingUpstream, Seen, free_port

TOKEN = "an-admin-token-long-enough-0123456789"


async def _admin(
    port: int, path: str, *, method: str = "GET", bearer: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"http://127.0.0.1:{port}{path}", headers=headers) as r,
    ):
        return r.status, dict(r.headers), await r.read()


async def _wait_admin(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "exited"
        try:
            status, _h, _b = await _admin(port, "/readyz")
        except aiohttp.ClientError:
            status = 0
        if status == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the admin listener never became ready")


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(family: Any, suffix: str = "", **labels: str) -> float:
    found = [
        s.value
        for s in family.samples
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (family.name, suffix, labels, family.samples)
    return float(found[0])


async def test_every_endpoint_with_two_workers_covers_both(tmp_path: Path) -> None:
    upstream = await RecordingUpstream().start()
    port, admin = free_port(), free_port()
    config = ocelot_file(tmp_path, upstream.port)
    try:
        with gateway_process(config, port, workers=2, args=("--admin", f"127.0.0.1:{admin}")) as p:
            await _wait_admin(admin, p)
            for _ in range(30):
                assert (await request(port, "GET", "/api/things")).status == 200
            assert (await request(port, "GET", "/nowhere")).status == 404

            status, headers, body = await _admin(admin, "/metrics")
            assert status == 200 and headers["Content-Type"].startswith("text/plain")
            metrics = _families(body.decode())
            status, _h, stats_body = await _admin(admin, "/stats")
            report = json.loads(stats_body)
            public = (await request(port, "GET", "/stats")).json()
            assert isinstance(public, dict)

            # Both workers served traffic and both are counted, the same in all three views.
            assert report["workers_reporting"] == 2 == _value(metrics["propylon_workers_reporting"])
            (route,) = report["routes"]
            labels = {"route": route["route"], "source": "Routes[0]"}
            assert route["requests"] == 30 == public["routes"][0]["requests"]
            requests = metrics["propylon_route_requests"]
            assert _value(requests, "_total", **labels) == 30
            responses = metrics["propylon_route_responses"]
            assert _value(responses, "_total", **labels, **{"class": "2xx"}) == 30
            assert _value(responses, "_total", **labels, **{"class": "5xx"}) == 0
            latency = metrics["propylon_route_duration_seconds"]
            assert _value(latency, "_count", **labels) == 30
            assert _value(latency, "_bucket", **labels, le="+Inf") == 30
            assert _value(latency, "_bucket", **labels, le="10.0") == 30
            bounds = [s for s in latency.samples if s.name.endswith("_bucket")]
            assert bounds[0].labels["le"] == "0.0005"
            assert _value(metrics["propylon_route_in_flight"], **labels) == 0
            assert _value(metrics["propylon_requests"], "_total") == report["totals"]["requests"]
            unrouted = metrics["propylon_unrouted_responses"]
            assert _value(unrouted, "_total", outcome="not_found", **{"class": "4xx"}) == 1
            upstreams = metrics["propylon_upstream_requests"]
            assert _value(upstreams, "_total", upstream=f"127.0.0.1:{upstream.port}") == 30
            failures = metrics["propylon_route_upstream_failures"]
            assert _value(failures, "_total", **labels, cause="timeout") == 0
            # Labels are templates, never the paths clients sent.
            assert "/api/things" not in body.decode() and "/nowhere" not in body.decode()

            status, _h, body = await _admin(admin, "/healthz")
            assert (status, json.loads(body)) == (200, {"alive": True})
            status, _h, body = await _admin(admin, "/readyz")
            ready = json.loads(body)
            assert status == 200 and ready["ready"] is True
            assert [w["state"] for w in ready["workers"]] == ["ready", "ready"]
            assert ready["last_reload_error"] is None

            status, _h, body = await _admin(admin, "/routes")
            expected = table_rows(load_config(str(config)))
            assert status == 200 and json.loads(body)["routes"] == expected
            status, _h, body = await _admin(admin, "/config")
            assert status == 200 and json.loads(body)["routes"][0]["source"] == "Routes[0]"

            status, _h, body = await _admin(admin, "/.well-known/jwks.json")
            assert status == 404 and json.loads(body)["codemessage"] == "RouteNotFound"
            status, _h, body = await _admin(admin, "/reload", method="POST")
            # The file did not change: a reload that changes nothing (tests/functional/
            # test_reload.py has the rest).
            reloaded = json.loads(body)
            assert status == 200 and reloaded["result"] == "ok"
            assert reloaded["added"] == reloaded["removed"] == reloaded["modified"] == []
            status, _h, body = await _admin(admin, "/")
            assert status == 501 and json.loads(body)["codemessage"] == "NotImplemented"
            status, headers, body = await _admin(admin, "/reload")
            assert status == 405 and "POST" in headers["Allow"]
            assert json.loads(body)["codemessage"] == "MethodNotAllowed"
            status, _h, body = await _admin(admin, "/missing")
            assert status == 404 and json.loads(body)["code"] == 421

            p.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(p.wait, 15) == 0
    finally:
        await upstream.close()


async def test_readyz_is_503_while_draining(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def slow(_request: web.Request, _seen: Seen) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="late")

    upstream = await RecordingUpstream(handler=slow).start()
    port, admin = free_port(), free_port()
    try:
        with gateway_process(
            ocelot_file(tmp_path, upstream.port), port, 1, args=("--admin", f"127.0.0.1:{admin}")
        ) as proc:
            await _wait_admin(admin, proc)
            in_flight = asyncio.create_task(request(port, "GET", "/api/slow", timeout=10))
            deadline = time.monotonic() + 5
            while not upstream.seen and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # the upstream is a plain list: poll it
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 5
            status, body = 200, b""
            while status == 200 and time.monotonic() < deadline:
                status, _h, body = await _admin(admin, "/readyz")
                await asyncio.sleep(0.02)
            assert status == 503
            answer = json.loads(body)
            assert answer["codemessage"] == "NotReady" and answer["data"]["draining"] is True
            release.set()
            assert (await in_flight).status == 200
            assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        await upstream.close()


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "propylon", "run", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )


def test_beyond_loopback_without_a_token_it_refuses_to_start(tmp_path: Path) -> None:
    config = ocelot_file(tmp_path, 9)
    env = {"PROPYLON_ADMIN_TOKEN": ""}
    done = _run(["--config", str(config), "--port", str(free_port()), "--admin", "0.0.0.0:0"], env)
    assert done.returncode == 2
    assert "--admin: error:" in done.stderr and "PROPYLON_ADMIN_TOKEN" in done.stderr
    native = tmp_path / "gw.yaml"
    native.write_text(
        yaml.safe_dump(
            {
                "propylon": 1,
                "admin": {"listen": "0.0.0.0:9901"},
                "routes": [{"path": "/x", "downstream": {"hosts": ["127.0.0.1:9"]}}],
            }
        )
    )
    done = _run(["--config", str(native), "--port", str(free_port())], env)
    assert done.returncode == 2
    assert f"{native}: admin.listen: error:" in done.stderr


async def test_a_token_is_required_and_compared(tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    with gateway_process(
        ocelot_file(tmp_path, 9),
        port,
        1,
        env={"PROPYLON_ADMIN_TOKEN": TOKEN},
        args=("--admin", f"127.0.0.1:{admin}"),
    ) as proc:
        await _wait_admin(admin, proc)  # /readyz needs no token: probes have none
        for path in ("/metrics", "/stats", "/config", "/routes"):
            status, headers, body = await _admin(admin, path)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
            assert json.loads(body)["codemessage"] == "Unauthorized"
            status, _h, _b = await _admin(admin, path, bearer=TOKEN[:-1] + "x")
            assert status == 401
            status, _h, _b = await _admin(admin, path, bearer=TOKEN)
            assert status == 200
        assert (await _admin(admin, "/healthz"))[0] == 200


async def test_the_admin_port_is_claimed_like_the_data_port(tmp_path: Path) -> None:
    admin = free_port()
    config = ocelot_file(tmp_path, 9)
    with gateway_process(config, free_port(), 1, args=("--admin", f"127.0.0.1:{admin}")) as p:
        await _wait_admin(admin, p)
        done = await asyncio.to_thread(
            _run,
            ["--config", str(config), "--port", str(free_port()), "--admin", f"127.0.0.1:{admin}"],
            {},
        )
        assert done.returncode == 1
        assert f"cannot listen on 127.0.0.1:{admin} (admin)" in done.stderr
        assert "choose another --admin port" in done.stderr


async def test_config_shows_no_secret(tmp_path: Path) -> None:
    load_or_create_key(tmp_path / "assertion.pem")
    private_pem = (tmp_path / "assertion.pem").read_text()
    hmac_secret = SECRET.decode()
    native = tmp_path / "gw.yaml"
    native.write_text(
        yaml.safe_dump(
            {
                "propylon": 1,
                "auth_providers": {"Bearer": {"secret_env": "TEST_SECRET"}},
                "state": {"redis_url": "redis://:hunter2-redis-pass@127.0.0.1:6399/0"},
                "assertion": {"key_file": "assertion.pem"},
                "routes": [
                    {
                        "path": "/x",
                        "downstream": {"hosts": ["127.0.0.1:9"]},
                        "auth": {"providers": ["Bearer"]},
                    }
                ],
            }
        )
    )
    port, admin = free_port(), free_port()
    env = {"TEST_SECRET": hmac_secret, "PROPYLON_ADMIN_TOKEN": TOKEN}
    with gateway_process(native, port, 1, env=env, args=("--admin", f"127.0.0.1:{admin}")) as p:
        await _wait_admin(admin, p)
        status, _h, body = await _admin(admin, "/config", bearer=TOKEN)
    assert status == 200
    text = body.decode()
    for secret in (hmac_secret, "hunter2-redis-pass", TOKEN, "PRIVATE KEY", private_pem[40:80]):
        assert secret not in text
    shown = json.loads(body)
    assert shown["providers"]["Bearer"]["secret"] == "<redacted>"
    assert shown["assertion"]["key_pem"] == "<redacted>"
    assert shown["admin"]["token"] == "<redacted>"
    assert shown["state"]["redis_url"] == "redis://<redacted>@127.0.0.1:6399/0"
    assert shown["assertion"]["key_file"].endswith("assertion.pem")  # names are not secrets


async def test_the_jwks_verifies_an_assertion_the_gateway_sent(tmp_path: Path) -> None:
    load_or_create_key(tmp_path / "assertion.pem")
    upstream = await RecordingUpstream().start()
    native = tmp_path / "gw.yaml"
    native.write_text(
        yaml.safe_dump(
            {
                "propylon": 1,
                "auth_providers": {"Bearer": {"secret_env": "TEST_SECRET"}},
                "assertion": {"key_file": "assertion.pem"},
                "routes": [
                    {
                        "path": "/profiles",
                        "downstream": {"hosts": [f"127.0.0.1:{upstream.port}"]},
                        "auth": {"providers": ["Bearer"]},
                        "assertion": {"audience": "profiles"},
                    }
                ],
            }
        )
    )
    port, admin = free_port(), free_port()
    env = {"TEST_SECRET": SECRET.decode()}
    try:
        with gateway_process(native, port, 2, env=env, args=("--admin", f"127.0.0.1:{admin}")) as p:
            await _wait_admin(admin, p)
            bearer = ("Authorization", f"Bearer {token('alice', role='admin')}")
            assert (await request(port, "GET", "/profiles", [bearer])).status == 200
            (assertion,) = upstream.last.headers_named("X-Gateway-Assertion")
            status, headers, body = await _admin(admin, "/.well-known/jwks.json")
            assert status == 200 and headers["Content-Type"].startswith("application/json")
            (key,) = json.loads(body)["keys"]
            assert key["kid"] == jwt.get_unverified_header(assertion)["kid"]
            # What a service does with SERVICEKIT_GATEWAY_JWKS_URL pointing here.
            keys = JwksUrlKeys(f"http://127.0.0.1:{admin}/.well-known/jwks.json")
            await asyncio.to_thread(keys.load)
            claims = AssertionVerifier(keys, audience="profiles").verify(assertion).claims
            assert (claims["sub"], claims["role"]) == ("alice", "admin")
    finally:
        await upstream.close()
