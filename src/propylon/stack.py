"""`make run`: the whole stack on this machine, embedded defaults, one command.

Starts the identity service, the profiles service (SQLite files, generated development keys
and an admin password generated once per state directory, all under ``.run/``) and the
gateway with ``deploy/ocelot.local.json``, with the signed hop on: the gateway's assertion
key is generated once into ``.run/gateway/`` and the services trust only assertions signed
with it (never a bare ``User`` header) (the second seed's format; written to the state
directory with this run's ports), waits until each answers, prints where everything listens
(the admin password's file, never the password) and a short curl walkthrough, and stops
everything cleanly on Ctrl-C (or SIGTERM).

This is a developer convenience, not how production runs: see docs/deployment.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from propylon.auth.assertion import AssertionSigner, load_or_create_key
from propylon.ports import bind_problem, served_by

ROOT = Path(__file__).resolve().parents[2]

WALKTHROUGH = """
propylon stack is up:
  gateway   http://{host}:{gw}        (the only thing clients should talk to)
  ops       http://127.0.0.1:{ops}   (admin listener: /metrics /healthz /readyz /stats
            /config /routes /.well-known/jwks.json; loopback only)
  dashboard http://127.0.0.1:{ops}/  (live per-route and per-upstream numbers)
  identity  http://127.0.0.1:{idp}   (internal; OpenAPI at /docs)
  profiles  http://127.0.0.1:{prof}   (internal; OpenAPI at /docs)
  state     {state}  (SQLite files, keys, avatars; delete it to start over)
  admin     {admin_user}, password {admin_password_source}
  signed    identity and profiles believe only assertions the gateway signs
            (key {assertion_key}); a bare User header sent to them directly is a 401:
            curl -s http://127.0.0.1:{idp}/auth/users -H 'User: {admin_user}'

Try it:
  curl -s -XPOST http://{host}:{gw}/auth/users -H 'Content-Type: application/json' \\
       -d '{{"username":"ada","password":"correct-horse-battery"}}'
  TOKEN=$(curl -s -XPOST http://{host}:{gw}/auth/token -H 'Content-Type: application/json' \\
       -d '{{"username":"ada","password":"correct-horse-battery"}}' \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["access_token"])')
  curl -s -XPOST http://{host}:{gw}/profiles -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"display_name":"Ada"}}'
  curl -s http://{host}:{gw}/profiles -H "Authorization: Bearer $TOKEN"
  curl -s http://{host}:{gw}/no-such-route          # 404 RouteNotFound
  curl -s http://{host}:{gw}/profiles               # 401 Unauthorized
  curl -s http://{host}:{gw}/stats                  # gateway statistics (loopback only)

Ctrl-C stops everything.
"""


def _wait_http(
    url: str, proc: subprocess.Popen[bytes], name: str, port: int, timeout: float = 60
) -> None:
    """Wait until ``proc`` answers on ``url``: an answer counts only when ``proc`` (or its
    workers) is what listens on ``port``, never whatever else might answer there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode} during start-up; see above")
        if served_by(port, proc.pid) is False:
            time.sleep(0.2)
            continue
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not answer on {url} within {timeout:.0f} s")


def _gateway_config(state: Path, identity_port: int, profiles_port: int) -> Path:
    """deploy/ocelot.local.json with the service ports this run uses."""
    config = json.loads((ROOT / "deploy" / "ocelot.local.json").read_text())
    ports = {8001: identity_port, 8002: profiles_port}
    for route in config["Routes"]:
        for host in route["DownstreamHostAndPorts"]:
            host["Port"] = ports.get(host["Port"], host["Port"])
    path = state / "gateway.ocelot.json"
    path.write_text(json.dumps(config, indent=2))
    return path


ADMIN_PASSWORD_FILE = "admin-password"


def admin_password(state: Path) -> tuple[str, str]:
    """The bootstrap admin's password and where to find it.

    ``IDENTITY_ADMIN_PASSWORD`` if set; otherwise one generated the first time a state
    directory is used and kept in an owner-only file there, so no two checkouts share a
    default password and none is printed.
    """
    given = os.environ.get("IDENTITY_ADMIN_PASSWORD")
    if given:
        return given, "from IDENTITY_ADMIN_PASSWORD"
    path = state / ADMIN_PASSWORD_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        password = path.read_text().strip()
        if not password:
            hint = f"delete it (and {state / 'identity'}) to start over"
            raise SystemExit(f"{path} is empty: {hint}") from None
        return password, f"in {path}"
    password = secrets.token_urlsafe(18)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password, f"in {path} (generated now)"


def _interrupt(_signum: int, _frame: object) -> None:
    # SIGTERM stops the stack the same way Ctrl-C does.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m propylon.stack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="gateway address (default loopback)")
    parser.add_argument("--port", type=int, default=8000, help="gateway port")
    parser.add_argument("--identity-port", type=int, default=8001)
    parser.add_argument("--profiles-port", type=int, default=8002)
    parser.add_argument("--state", default=str(ROOT / ".run"), help="where state is kept")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument(
        "--admin-port", type=int, default=9901, help="the gateway's admin listener (loopback)"
    )
    args = parser.parse_args(argv)

    taken = [
        f"{name} port {port} on {host}: {problem}"
        for name, host, port in (
            ("gateway", args.host, args.port),
            ("gateway admin", "127.0.0.1", args.admin_port),
            ("identity", "127.0.0.1", args.identity_port),
            ("profiles", "127.0.0.1", args.profiles_port),
        )
        if (problem := bind_problem(host, port)) is not None
    ]
    if taken:
        # Checked before anything starts: a stack that cannot bind would otherwise find
        # another process answering on its port and report itself up.
        print("cannot start the stack, ports in use:\n  " + "\n  ".join(taken), file=sys.stderr)
        print("stop what listens there, or choose ports: python -m propylon.stack --help")
        return 1
    state = Path(args.state)
    (state / "identity").mkdir(parents=True, exist_ok=True)
    (state / "profiles").mkdir(parents=True, exist_ok=True)
    admin_user = os.environ.get("IDENTITY_ADMIN_USERNAME", "admin")
    admin_password_value, admin_password_source = admin_password(state)
    # Generated here, for this checkout only; production names its key (docs/deployment.md).
    assertion_key = state / "gateway" / "assertion-key.pem"
    public_keys = state / "gateway" / "gateway-keys.json"
    try:
        signer = AssertionSigner(load_or_create_key(assertion_key))
        # Before the services start, so they never wait for it; the gateway writes it again.
        signer.write_public_keys(public_keys)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"{exc}: delete {assertion_key} to have a new key made") from None
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    verifying = {"SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE": str(public_keys)}
    identity_env = {
        **base_env,
        **verifying,
        "IDENTITY_DATA_DIR": str(state / "identity"),
        "IDENTITY_MIGRATE": "true",
        "IDENTITY_ADMIN_USERNAME": admin_user,
        "IDENTITY_ADMIN_PASSWORD": admin_password_value,
    }
    profiles_env = {
        **base_env,
        **verifying,
        "PROFILES_DATA_DIR": str(state / "profiles"),
        "PROFILES_MIGRATE": "true",
        # No PROFILES_TRUST_ROLE_HEADER: the caller's role comes in the signed assertion.
    }
    jwks = f"http://127.0.0.1:{args.identity_port}/auth/.well-known/jwks.json"
    gateway_env = {
        **base_env,
        "PROPYLON_JWKS_URL": jwks,
        "PROPYLON_JWT_ALGORITHMS": "RS256",
        "PROPYLON_JWT_ISSUER": identity_env.get("IDENTITY_ISSUER", "propylon-identity"),
        "PROPYLON_ASSERTION_KEY_FILE": str(assertion_key),
        "PROPYLON_ASSERTION_PUBLIC_KEYS_FILE": str(public_keys),
        # deploy/ocelot.local.json reaches both services at 127.0.0.1: name them by port.
        "PROPYLON_ASSERTION_AUDIENCES": (
            f"127.0.0.1:{args.identity_port}=identity,127.0.0.1:{args.profiles_port}=profiles"
        ),
    }
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT)  # noqa: S603 (our own commands)
        procs.append((name, proc))
        return proc

    def stop(*_: object) -> None:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(procs):
            try:
                proc.wait(25)
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, _interrupt)
    py = sys.executable
    try:
        identity = start(
            "identity",
            [py, "-m", "identity", "--host", "127.0.0.1", "--port", str(args.identity_port)],
            identity_env,
        )
        profiles = start(
            "profiles",
            [py, "-m", "profiles", "--host", "127.0.0.1", "--port", str(args.profiles_port)],
            profiles_env,
        )
        _wait_http(
            f"http://127.0.0.1:{args.identity_port}/healthz",
            identity,
            "identity",
            args.identity_port,
        )
        _wait_http(
            f"http://127.0.0.1:{args.profiles_port}/healthz",
            profiles,
            "profiles",
            args.profiles_port,
        )
        gateway = start(
            "gateway",
            [
                py,
                "-m",
                "propylon",
                "run",
                "--config",
                str(_gateway_config(state, args.identity_port, args.profiles_port)),
                "--host",
                args.host,
                "--port",
                str(args.port),
                "--workers",
                str(args.workers),
                "--admin",
                f"127.0.0.1:{args.admin_port}",
            ],
            gateway_env,
        )
        _wait_http(f"http://127.0.0.1:{args.port}/stats", gateway, "gateway", args.port)
        _wait_http(
            f"http://127.0.0.1:{args.admin_port}/readyz", gateway, "gateway admin", args.admin_port
        )
        print(
            WALKTHROUGH.format(
                host=args.host,
                gw=args.port,
                ops=args.admin_port,
                idp=args.identity_port,
                prof=args.profiles_port,
                state=state,
                admin_user=admin_user,
                admin_password_source=admin_password_source,
                assertion_key=assertion_key,
            ),
            flush=True,
        )
        while all(proc.poll() is None for _name, proc in procs):
            time.sleep(0.5)
        dead = [name for name, proc in procs if proc.poll() is not None]
        print(f"stopping: {', '.join(dead)} exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the stack...", file=sys.stderr)
        return 0
    finally:
        stop()


if __name__ == "__main__":
    raise SystemExit(main())
