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
            status, _h, body = await _admin(admin, "/dashboard.json")
            shown = json.loads(body)["last_reload"]
            assert status == 200 and shown["ok"] is True and shown["error"] is None
            assert shown["at"].endswith("+00:00") and shown["added"] == []
            status, headers, body = await _admin(admin, "/")
            assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
            assert (
                b"dashboard.json" in body
                and "script-src 'sha256-" in headers["Content-Security-Policy"]
            )
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


def _limited_and_fragile(tmp_path: Path, upstream: int, dead: int) -> Path:
    return ocelot_file(
        tmp_path,
        upstream,
        {
            "UpstreamPathTemplate": "/limited/{everything}",
            "DownstreamPathTemplate": "/{everything}",
            "DownstreamScheme": "http",
            "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": upstream}],
            "RateLimitOptions": {"EnableRateLimiting": True, "Period": "1m", "Limit": 2},
        },
        {
            "UpstreamPathTemplate": "/fragile/{everything}",
            "DownstreamPathTemplate": "/{everything}",
            "DownstreamScheme": "http",
            "DownstreamHostAndPorts": [{"Host": "127.0.0.1", "Port": dead}],
            "QoSOptions": {"ExceptionsAllowedBeforeBreaking": 2, "DurationOfBreak": 60000},
        },
    )


async def test_rate_limits_and_breakers_are_counted_over_both_workers(tmp_path: Path) -> None:
    upstream = await RecordingUpstream().start()
    port, admin, dead = free_port(), free_port(), free_port()
    config = _limited_and_fragile(tmp_path, upstream.port, dead)
    env = {"PROPYLON_ADMIN_TOKEN": TOKEN}
    try:
        with gateway_process(
            config, port, workers=2, env=env, args=("--admin", f"127.0.0.1:{admin}")
        ) as p:
            await _wait_admin(admin, p)
            # The page is open (it holds no data); its numbers are not, without the token.
            assert (await _admin(admin, "/"))[0] == 200
            status, headers, body = await _admin(admin, "/dashboard.json")
            assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="admin"'
            status, headers, body = await _admin(admin, "/dashboard.json", bearer=TOKEN)
            first = json.loads(body)
            assert status == 200 and headers["Cache-Control"] == "no-store"
            assert first["window_seconds"] is None  # nothing to compare with yet
            assert first["routes"][1]["requests_per_second"] is None
            assert (first["ready"], first["last_reload"], first["workers_reporting"]) == (
                True,
                None,
                2,
            )

            statuses = [
                (await request(port, "GET", "/limited/x", [("Oc-Client", "ci")])).status
                for _ in range(6)
            ]
            # The workers share one table: one limit for the client, whichever worker serves it.
            assert statuses.count(429) == 4, statuses
            unknown = await request(port, "GET", "/limited/x")  # no client id header
            assert unknown.json()["codemessage"] == "ClientNotIdentified"  # type: ignore[index]
            fragile = [(await request(port, "GET", "/fragile/x")).status for _ in range(6)]
            assert fragile.count(503) >= 1 and set(fragile) <= {502, 503}

            status, _h, body = await _admin(admin, "/stats", bearer=TOKEN)
            plain, limited, breaker = json.loads(body)["routes"]
            assert plain["rate_limit"] is None and plain["circuit_breaker"] is None
            assert limited["rate_limit"] == {
                "admitted": 2,
                "refused": 4,
                "unidentified": 1,
                "unavailable": 0,
            }
            circuit = breaker["circuit_breaker"]
            assert circuit["state"] == "open" and sum(circuit["workers"].values()) == 2
            assert circuit["transitions"]["open"] == circuit["workers"]["open"] >= 1

            status, _h, body = await _admin(admin, "/metrics", bearer=TOKEN)
            metrics = _families(body.decode())
            decisions = metrics["propylon_rate_limit_decisions"]
            labels = {"route": limited["route"], "source": "Routes[1]"}
            assert _value(decisions, "_total", **labels, decision="refused") == 4
            assert _value(decisions, "_total", **labels, decision="admitted") == 2
            assert _value(decisions, "_total", **labels, decision="unidentified") == 1
            labels = {"route": breaker["route"], "source": "Routes[2]"}
            assert _value(metrics["propylon_circuit_breaker_state"], **labels) == 2
            moved = metrics["propylon_circuit_breaker_transitions"]
            assert _value(moved, "_total", **labels, state="open") == circuit["transitions"]["open"]

            status, _h, body = await _admin(admin, "/dashboard.json", bearer=TOKEN)
            view = json.loads(body)
            assert view["window_seconds"] > 0
            plain, limited, breaker = view["routes"]
            assert plain["requests_per_second"] == 0 and plain["latency_ms"]["p50"] is None
            assert limited["requests_per_second"] > 0
            assert limited["window_responses"] == {"1xx": 0, "2xx": 2, "3xx": 0, "4xx": 4, "5xx": 1}
            assert limited["rate_limit"]["refused_per_second"] > 0
            assert breaker["circuit_breaker"]["state"] == "open"
            assert breaker["error_rate"] == 1.0  # 502s and the breaker's own 503s
            (dead_host,) = [u for u in view["upstreams"] if u["upstream"] == f"127.0.0.1:{dead}"]
            assert dead_host["errors"] >= 2 and dead_host["last_error"] == "refused"
    finally:
        await upstream.close()
