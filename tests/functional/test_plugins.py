"""User plugins (propylon.plugins) through the real gateway: the example API-key plugin end
to end, async hooks, failures that must not take the worker down, and config errors."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from propylon.config.loader import load_config
from propylon.config.model import ConfigError, GatewayConfig
from tests.support.client import request
from tests.support.gateway import SECRET, running, token
from tests.support.upstreams import RecordingUpstream

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


@pytest.fixture(autouse=True)
def _example_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _native(tmp_path: Path, port: int, definitions: dict[str, object], **route: object) -> Path:
    doc = {
        "propylon": 1,
        "auth_providers": {"Bearer": {"secret": SECRET.decode(), "algorithms": ["HS256"]}},
        "plugins": definitions,
        "routes": [
            {"path": "/open", "downstream": {"hosts": [f"127.0.0.1:{port}"]}, **route},
            {
                "path": "/private",
                "auth": {"providers": ["Bearer"]},
                "downstream": {"hosts": [f"127.0.0.1:{port}"]},
                **route,
            },
            {"path": "/plain", "downstream": {"hosts": [f"127.0.0.1:{port}"]}},
        ],
    }
    path = tmp_path / "propylon.json"
    path.write_text(json.dumps(doc))
    return path


def _load(path: Path) -> GatewayConfig:
    return load_config(str(path), env={})


async def test_the_example_api_key_plugin_end_to_end(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    digest = hashlib.sha256(b"s3cret-key").hexdigest()
    keys.write_text(f"# hashed keys\nreports-bot:{digest}\n")
    up = await RecordingUpstream().start()
    try:
        plugins = {
            "api_keys": {"use": "api_keys:ApiKeyCheck", "settings": {"keys_file": str(keys)}}
        }
        cfg = _load(_native(tmp_path, up.port, plugins, plugins=["api_keys"]))
        async with running(cfg) as gw:
            r = await request(gw.port, "GET", "/open", [("X-Api-Key", "s3cret-key")])
            assert r.status == 200
            assert up.last.header("X-Api-Client") == "reports-bot"

            for headers in ([], [("X-Api-Key", "wrong")], [("X-Api-Key", "")]):
                r = await request(gw.port, "GET", "/open", headers)
                assert r.status == 401
                assert r.json() == {
                    "code": 429,
                    "codemessage": "PluginRefused",
                    "message": "A valid API key is required.",
                }
            assert len(up.seen) == 1

            # A client cannot name itself: its own X-Api-Client is not what the plugin says.
            await request(
                gw.port,
                "GET",
                "/open",
                [("X-Api-Key", "s3cret-key"), ("X-Api-Client", "admin")],
            )
            assert up.last.headers_named("X-Api-Client")[-1] == "reports-bot"

            # After authentication: a token alone does not pass the key check.
            t = token("alice")
            r = await request(gw.port, "GET", "/private", [("Authorization", f"Bearer {t}")])
            assert r.status == 401
            r = await request(gw.port, "GET", "/plain")
            assert r.status == 200  # routes that do not list it do not run it
    finally:
        await up.close()


async def test_an_async_plugin_sees_the_caller_and_adds_headers_both_ways(tmp_path: Path) -> None:
    up = await RecordingUpstream().start()
    try:
        plugins = {"tag": {"use": "tests.support.plugins:Tagging", "settings": {"tag": "t1"}}}
        cfg = _load(_native(tmp_path, up.port, plugins, plugins=["tag"]))
        async with running(cfg) as gw:
            t = token("alice")
            r = await request(gw.port, "GET", "/private", [("Authorization", f"Bearer {t}")])
            assert r.status == 200
            assert r.header("X-Tag") == "t1"
            assert up.last.header("X-Tagged-For") == "alice"
            assert up.last.header("User") == "alice"
            # A refusal before the plugin (401) never runs it, and carries no plugin header.
            r = await request(gw.port, "GET", "/private")
            assert r.status == 401
            assert r.header("X-Tag") is None
    finally:
        await up.close()


@pytest.mark.parametrize(
    "plugin", ["Raising", "RaisingLater", "BadHeader", "ForgedAssertion", "ForgedTraceparent"]
)
async def test_a_plugin_that_raises_is_a_500_and_the_worker_carries_on(
    tmp_path: Path, plugin: str, caplog: pytest.LogCaptureFixture
) -> None:
    up = await RecordingUpstream().start()
    try:
        plugins = {"p": {"use": f"tests.support.plugins:{plugin}"}}
        cfg = _load(_native(tmp_path, up.port, plugins, plugins=["p"]))
        async with running(cfg) as gw:
            with caplog.at_level(logging.ERROR, logger="propylon.plugins"):
                for _ in range(3):
                    r = await request(gw.port, "GET", "/open", [("User", "admin")])
                    assert r.status == 500
                    assert r.json()["codemessage"] == "UndefinedServerException"
                    assert b"hunter2" not in r.body
            messages = [rec.getMessage() for rec in caplog.records]
            assert any(m.startswith("plugin p ") for m in messages), messages
            assert up.seen == []
            assert (await request(gw.port, "GET", "/plain")).status == 200
    finally:
        await up.close()


async def test_a_plugin_that_blocks_the_loop_is_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    up = await RecordingUpstream().start()
    try:
        plugins = {"slow": {"use": "tests.support.plugins:Blocking"}}
        cfg = _load(_native(tmp_path, up.port, plugins, plugins=["slow"]))
        async with running(cfg) as gw:
            with caplog.at_level(logging.WARNING, logger="propylon.plugins"):
                r = await request(gw.port, "GET", "/open")
            assert r.status == 200
            warnings = [rec.getMessage() for rec in caplog.records]
            assert any("plugin slow held the event loop" in m for m in warnings), warnings
    finally:
        await up.close()


@pytest.mark.parametrize(
    ("definition", "route_plugins", "where", "says"),
    [
        ({"use": "no_such_module:X"}, ["p"], "plugins.p.use", "cannot import 'no_such_module'"),
        ({"use": "tests.support.plugins:Nope"}, ["p"], "plugins.p.use", "has no 'Nope'"),
        ({"use": "tests.support.plugins:NotAPlugin"}, ["p"], "plugins.p.use", "not a subclass"),
        ({"use": "tests.support.plugins"}, ["p"], "plugins.p.use", "package.module:Class"),
        ({"use": "tests.support.plugins:Picky"}, ["p"], "plugins.p.settings", "level is required"),
        ({"use": "tests.support.plugins:Tagging"}, ["q"], "routes[0].plugins[0]", "'q' is not"),
    ],
)
def test_plugin_config_errors_name_the_key(
    tmp_path: Path, definition: dict[str, object], route_plugins: list[str], where: str, says: str
) -> None:
    path = _native(tmp_path, 9, {"p": definition}, plugins=route_plugins)
    with pytest.raises(ConfigError) as raised:
        _load(path)
    text = str(raised.value)
    assert where in text and says in text, text


def test_check_reports_a_plugin_that_does_not_import(tmp_path: Path) -> None:
    path = _native(tmp_path, 9, {"p": {"use": "nowhere_at_all:Plugin"}}, plugins=["p"])
    run = subprocess.run(
        [sys.executable, "-m", "propylon", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "plugins.p.use" in run.stdout + run.stderr
