"""The files of the `docker compose up` path: valid, consistent with each other and the code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from propylon.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PROPYLON_JWKS_URL": "http://identity:8001/auth/.well-known/jwks.json"}


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither 'docker compose' nor 'docker-compose' is installed")
    result = subprocess.run(
        [*command, "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "IDENTITY_ADMIN_PASSWORD": "test-only-password"},
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_builds_what_exists_and_exposes_only_the_gateway() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        context = ROOT / (build if isinstance(build, str) else build["context"])
        dockerfile = context / (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert dockerfile.is_file(), (name, dockerfile)
    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["gateway"]
    assert compose["networks"]["backend"]["internal"] is True
    for name in ("identity", "profiles", "postgres", "redis"):
        assert services[name]["networks"] == ["backend"], name


def test_shipped_gateway_configs_load_and_agree() -> None:
    local = load_config(str(ROOT / "deploy" / "ocelot.local.json"), env=ENV)
    compose = load_config(str(ROOT / "deploy" / "ocelot.compose.json"), env=ENV)
    assert not [w for w in local.warnings if w.severity == "error"]
    strip = [(r.source, r.upstream_path, r.methods, r.auth, r.claim_headers) for r in local.routes]
    assert strip == [
        (r.source, r.upstream_path, r.methods, r.auth, r.claim_headers) for r in compose.routes
    ]
    hosts = {h.host for r in compose.routes for h in r.downstream_hosts}
    assert hosts == {"identity", "profiles"}
    # The compose config's ports match the ports the service containers listen on.
    raw = json.loads((ROOT / "deploy" / "ocelot.compose.json").read_text())
    ports = {h["Host"]: h["Port"] for r in raw["Routes"] for h in r["DownstreamHostAndPorts"]}
    for name, port in ports.items():
        dockerfile = (ROOT / "services" / name / "Dockerfile").read_text()
        assert f"EXPOSE {port}" in dockerfile, name
