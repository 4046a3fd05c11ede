"""The files of the `docker compose up` path: valid, consistent with each other and the code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from propylon.auth.assertion import load_or_create_key
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


def _mounts(service: dict[str, object]) -> dict[str, str]:
    """volume name -> mount point (with any :ro dropped)."""
    found: dict[str, str] = {}
    for item in service.get("volumes", []):  # type: ignore[attr-defined]
        volume, target, *_ = str(item).split(":")
        found[volume] = target
    return found


def test_compose_turns_the_signed_hop_on(tmp_path: Path) -> None:
    """One key made once for every gateway replica, its public keys read by both services,
    and the private key mounted into nothing but gateways."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    keygen = services["gateway-key"]
    command = keygen["command"]
    assert command[:2] == ["propylon", "assertion-key"]
    private_key, public_keys = command[2], command[command.index("--public-keys") + 1]
    keygen_mounts = _mounts(keygen)
    private_volume = next(v for v, at in keygen_mounts.items() if private_key.startswith(at))
    public_volume = next(v for v, at in keygen_mounts.items() if public_keys.startswith(at))
    assert private_volume != public_volume

    gateway = services["gateway"]
    assert gateway["depends_on"]["gateway-key"]["condition"] == "service_completed_successfully"
    assert gateway["environment"]["PROPYLON_ASSERTION_KEY_FILE"] == private_key
    assert _mounts(gateway)[private_volume] == keygen_mounts[private_volume]
    for name in ("identity", "profiles"):
        service = services[name]
        mounts = _mounts(service)
        assert private_volume not in mounts, name
        keys_file = service["environment"]["SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE"]
        assert keys_file == public_keys.replace(keygen_mounts[public_volume], mounts[public_volume])
        assert service["depends_on"]["gateway-key"]["condition"] == "service_completed_successfully"
        assert "PROFILES_TRUST_ROLE_HEADER" not in service["environment"], name

    # The compose routes sign for the services by their host names, which are the audiences
    # the services expect by default.
    load_or_create_key(tmp_path / "k.pem")
    env = {**ENV, "PROPYLON_ASSERTION_KEY_FILE": str(tmp_path / "k.pem")}
    compose = load_config(str(ROOT / "deploy" / "ocelot.compose.json"), env=env)
    signed = {(r.downstream_hosts[0].host, r.assertion_audience) for r in compose.routes if r.auth}
    assert signed == {("identity", "identity"), ("profiles", "profiles")}
    # The image owns the mount points, so a fresh volume is writable by the app user.
    assert "/keys/private /keys/public" in (ROOT / "Dockerfile").read_text()
