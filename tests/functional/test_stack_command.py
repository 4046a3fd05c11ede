"""`make run` (python -m propylon.stack): the whole stack comes up, works, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.upstreams import free_port


def _post(port: int, path: str, body: dict[str, str], token: str | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stack_runs_the_seed_flow_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    gw, idp, prof, ops = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "IDENTITY_ARGON2_TIME_COST": "1",
        "IDENTITY_ARGON2_MEMORY_KIB": "8",
        "IDENTITY_ARGON2_PARALLELISM": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("IDENTITY_ADMIN_PASSWORD", None)
    env.pop("IDENTITY_ADMIN_USERNAME", None)
    log = (tmp_path / "stack.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "propylon.stack",
            "--port",
            str(gw),
            "--identity-port",
            str(idp),
            "--profiles-port",
            str(prof),
            "--admin-port",
            str(ops),
            "--state",
            str(tmp_path / "state"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while "propylon stack is up" not in (tmp_path / "stack.log").read_text():
            assert proc.poll() is None, (tmp_path / "stack.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "stack.log").read_text()
            time.sleep(0.2)
        status, body = _post(gw, "/auth/users", {"username": "ada", "password": "correct-horse-9"})
        assert status == 201, body
        status, body = _post(gw, "/auth/token", {"username": "ada", "password": "correct-horse-9"})
        assert status == 200 and body["codemessage"] == "LoginSuccess", body
        token = body["data"]["access_token"]
        status, body = _post(gw, "/profiles", {"display_name": "Ada"}, token)
        assert status == 201, body
        status, body = _post(gw, "/profiles", None, token)  # type: ignore[arg-type]
        assert status == 200 and body["data"]["total"] == 1, body
        status, body = _post(gw, "/no-such-route", None)  # type: ignore[arg-type]
        assert status == 404 and body["codemessage"] == "RouteNotFound"

        # No fixed admin password: one generated for this state directory, kept owner-only,
        # and the walkthrough says where it is rather than what it is.
        password_file = tmp_path / "state" / "admin-password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        assert len(password) >= 20
        printed = (tmp_path / "stack.log").read_text()
        # The admin listener is on, and the walkthrough says where.
        assert f"ops       http://127.0.0.1:{ops}" in printed
        with urllib.request.urlopen(f"http://127.0.0.1:{ops}/readyz", timeout=5) as ready:
            assert json.loads(ready.read())["ready"] is True
        assert f"dashboard http://127.0.0.1:{ops}/ " in printed
        with urllib.request.urlopen(f"http://127.0.0.1:{ops}/", timeout=5) as board:
            assert b"<title>propylon dashboard</title>" in board.read()
        assert password not in printed and "change-me-admin-password" not in printed
        assert f"password in {password_file}" in printed
        status, body = _post(gw, "/auth/token", {"username": "admin", "password": password})
        assert status == 200 and body["codemessage"] == "LoginSuccess", body
        admin_token = body["data"]["access_token"]

        # The signed hop is on: straight to identity, a bare User header is refused; through
        # the gateway the admin's token works. The key was made for this state directory.
        forged = urllib.request.Request(
            f"http://127.0.0.1:{idp}/auth/users", headers={"User": "admin"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
        assert refused.value.code == 401
        status, body = _post(gw, "/auth/users", None, admin_token)  # type: ignore[arg-type]
        assert status == 200 and body["codemessage"] == "DataFound", body
        key = tmp_path / "state" / "gateway" / "assertion-key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert (
            '"crv":"Ed25519"' in (tmp_path / "state" / "gateway" / "gateway-keys.json").read_text()
        )
        assert f"key {key}" in printed
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(40)
        log.close()
    assert code == 0, (tmp_path / "stack.log").read_text()
    for port in (gw, idp, prof):
        assert not _port_open(port), port


def test_stack_refuses_to_start_when_its_gateway_port_is_taken(tmp_path: Path) -> None:
    """#11 item 4: with the port taken it used to say "stack is up", reaching the other
    process, and only then fail."""
    gw, idp, prof = free_port(), free_port(), free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", gw))
        squatter.listen(1)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "propylon.stack",
                "--port",
                str(gw),
                "--identity-port",
                str(idp),
                "--profiles-port",
                str(prof),
                "--state",
                str(tmp_path / "state"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"gateway port {gw} on 127.0.0.1" in done.stderr
    assert "stack is up" not in done.stdout
    assert not (tmp_path / "state").exists()  # nothing was started
    assert not _port_open(idp) and not _port_open(prof)
