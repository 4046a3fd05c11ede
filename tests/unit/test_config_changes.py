"""What a reload reports as changed (config/changes.py), on real configs read from files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from propylon.config.changes import applied, diff
from propylon.config.loader import load_config
from propylon.config.model import GatewayConfig


def _load(tmp_path: Path, name: str, **document: Any) -> GatewayConfig:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(document))
    return load_config(str(path), env={})


def _route(path: str, port: int = 9, **extra: Any) -> dict[str, Any]:
    return {"path": path, "downstream": {"hosts": [f"127.0.0.1:{port}"]}, **extra}


def test_routes_are_known_by_methods_host_and_template_not_position(tmp_path: Path) -> None:
    old = _load(
        tmp_path,
        "old",
        routes=[_route("/a"), _route("/b", methods=["GET"]), _route("/c"), _route("/d")],
    )
    new = _load(
        tmp_path,
        "new",
        routes=[
            _route("/d"),  # moved only: no change
            _route("/c", timeout=5),  # modified
            _route("/b", methods=["GET", "POST"]),  # other methods: another route
            _route("/e", upstream_host="api.example.com"),
        ],
    )
    changes = diff(old, new)
    assert changes.added == ("GET,POST /b", "* api.example.com/e")
    assert changes.removed == ("* /a", "GET /b")
    assert changes.modified == ("* /c",)
    assert changes.needs_restart == ()
    assert not changes.settings
    assert changes.summary() == (
        "added GET,POST /b, * api.example.com/e; removed * /a, GET /b; modified * /c"
    )


def test_listeners_and_the_signing_key_need_a_restart_and_stay(tmp_path: Path) -> None:
    old = _load(tmp_path, "old", routes=[_route("/a")], admin={"listen": "127.0.0.1:9901"})
    new = _load(
        tmp_path,
        "new",
        routes=[_route("/a")],
        admin={"listen": "127.0.0.1:9902"},
        limits={"max_headers": 50},
    )
    changes = diff(old, new)
    assert changes.needs_restart == (
        "admin.listen: 127.0.0.1:9901 -> 127.0.0.1:9902 needs a restart",
    )
    assert changes.settings and changes.summary() == "settings changed"
    kept = applied(old, new)
    assert kept.admin == old.admin
    assert kept.limits.max_headers == 50


def test_the_same_file_is_no_change(tmp_path: Path) -> None:
    config = _load(tmp_path, "same", routes=[_route("/a")])
    again = _load(tmp_path, "same", routes=[_route("/a")])
    changes = diff(config, again)
    assert not changes.any and changes.summary() == "no change"


def test_tracing_settings_need_a_restart_and_stay(tmp_path: Path) -> None:
    old = _load(tmp_path, "old", routes=[_route("/a")])
    new = _load(
        tmp_path,
        "new",
        routes=[_route("/a")],
        tracing={"otlp_endpoint": "http://127.0.0.1:4318", "sample_ratio": 0.5},
    )
    changes = diff(old, new)
    assert changes.needs_restart == (
        "tracing: the export or sampling settings changed; that needs a restart",
    )
    assert not changes.settings  # nothing else changed, so nothing is applied
    assert applied(old, new).tracing == old.tracing
