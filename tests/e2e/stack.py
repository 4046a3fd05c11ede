"""The whole stack as real processes: identity, profiles and the gateway in front of them.

The gateway runs the shipped ``deploy/ocelot.local.json`` with only the service ports
rewritten, so what is tested is the configuration people start from. The signed hop is on,
explicitly, as ``make run`` turns it on: the gateway signs with a key made by
``propylon assertion-key`` and writes its public keys where the services read them, so they
ignore bare ``User`` / ``X-User-Role`` headers. Each process writes its output to a file,
which failing tests show (see conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.services.databases import scratch_database
from tests.support.upstreams import free_port

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = ROOT / "deploy" / "ocelot.local.json"
# The ports deploy/ocelot.local.json names for identity and profiles.
SHIPPED_IDENTITY_PORT = 8001
SHIPPED_PROFILES_PORT = 8002

ADMIN_USERNAME = "e2e-admin"
ADMIN_PASSWORD = "e2e admin password, long enough"
ISSUER = "propylon-identity"

START_TIMEOUT = 45.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 150

# Variables of the developer's shell that would change what the processes do.
_INHERITED_OUT = ("DATABASE_URL",)
_INHERITED_OUT_PREFIXES = (
    "IDENTITY_",
    "PROFILES_",
    "SERVICEKIT_",
    "PROPYLON_JWT",
    "PROPYLON_JWKS",
    "PROPYLON_ASSERTION",
)


@dataclass(frozen=True, slots=True)
class RunningProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True, slots=True)
class RunningStack:
    backend: str
    gateway_port: int
    identity_port: int
    profiles_port: int
    public_keys: Path
    """The gateway's public JWK set, as the services read it."""
    processes: tuple[RunningProcess, ...]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def identity_url(self) -> str:
        """Straight to the service, past the gateway: what a caller inside the network sees."""
        return f"http://127.0.0.1:{self.identity_port}"

    @property
    def profiles_url(self) -> str:
        return f"http://127.0.0.1:{self.profiles_port}"

    @property
    def identity_upstream(self) -> str:
        """How /stats names the identity service among the upstreams."""
        return f"127.0.0.1:{self.identity_port}"

    def output(self) -> str:
        return "\n".join(_tail(p) for p in self.processes)


def _tail(running: RunningProcess) -> str:
    lines = running.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    state = running.process.poll()
    status = "running" if state is None else f"exited {state}"
    return "\n".join([f"----- {running.name} ({status}): {running.log} -----", *lines])


def gateway_config(directory: Path, identity_port: int, profiles_port: int) -> Path:
    """The shipped config with this run's service ports, and nothing else changed."""
    config = json.loads(SHIPPED_CONFIG.read_text())
    ports = {SHIPPED_IDENTITY_PORT: identity_port, SHIPPED_PROFILES_PORT: profiles_port}
    for route in config["Routes"]:
        for host in route["DownstreamHostAndPorts"]:
            host["Port"] = ports.get(host["Port"], host["Port"])
    path = directory / "ocelot.e2e.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _base_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _INHERITED_OUT and not name.startswith(_INHERITED_OUT_PREFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def _process(
    name: str, command: list[str], env: Mapping[str, str], directory: Path
) -> Iterator[RunningProcess]:
    log = directory / f"{name}.log"
    with log.open("wb") as sink:
        # A session of its own, so stopping it reaches any worker processes it forks.
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        yield RunningProcess(name, process, log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_ready(url: str, running: RunningProcess, everyone: list[RunningProcess]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(url):
        if running.process.poll() is not None or time.monotonic() > deadline:
            logs = "\n".join(_tail(p) for p in everyone)
            raise RuntimeError(f"{running.name} did not become ready at {url}\n{logs}")
        time.sleep(0.1)


@contextmanager
def running_stack(backend: str, directory: Path) -> Iterator[RunningStack]:
    """Start identity and profiles on ``backend`` ("sqlite" or "postgresql"), then the gateway."""
    identity_port, profiles_port, gateway_port = free_port(), free_port(), free_port()
    base = _base_environment()
    key_file = directory / "gateway" / "assertion-key.pem"
    public_keys = directory / "gateway" / "gateway-keys.json"
    # Written before the services start, so they never wait for it (the gateway writes the
    # same set again when it starts).
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "propylon",
            "assertion-key",
            str(key_file),
            "--public-keys",
            str(public_keys),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if made.returncode != 0:
        raise RuntimeError(f"propylon assertion-key failed: {made.stderr}")
    verifying = {"SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE": str(public_keys)}
    identity_env = {
        **base,
        **verifying,
        "IDENTITY_DATA_DIR": str(directory / "identity"),
        "IDENTITY_MIGRATE": "true",
        "IDENTITY_ADMIN_USERNAME": ADMIN_USERNAME,
        "IDENTITY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "IDENTITY_ISSUER": ISSUER,
        # Cheap argon2 keeps the suite fast; the defaults stay RFC 9106 grade.
        "IDENTITY_ARGON2_TIME_COST": "1",
        "IDENTITY_ARGON2_MEMORY_KIB": "8",
        "IDENTITY_ARGON2_PARALLELISM": "1",
        # Every e2e client is 127.0.0.1: the throttle's per-client and registration limits
        # would slow the suite down; tests/services covers them.
        "IDENTITY_LOGIN_MAX_FAILURES": "1000",
        "IDENTITY_LOGIN_CLIENT_MAX_FAILURES": "100000",
        "IDENTITY_LOGIN_USER_MAX_FAILURES": "100000",
        "IDENTITY_REGISTER_MAX_PER_WINDOW": "100000",
    }
    profiles_env = {
        **base,
        **verifying,
        "PROFILES_DATA_DIR": str(directory / "profiles"),
        "PROFILES_MIGRATE": "true",
        # Believed only from a verified assertion: a bare header is ignored with the signed
        # hop on, so this would be safe even if the gateway did not strip client copies.
        "PROFILES_TRUST_ROLE_HEADER": "true",
    }
    gateway_env = {
        **base,
        "PROPYLON_JWKS_URL": f"http://127.0.0.1:{identity_port}/auth/.well-known/jwks.json",
        "PROPYLON_JWT_ALGORITHMS": "RS256",
        "PROPYLON_JWT_ISSUER": ISSUER,
        "PROPYLON_ASSERTION_KEY_FILE": str(key_file),
        "PROPYLON_ASSERTION_PUBLIC_KEYS_FILE": str(public_keys),
        # The shipped config reaches both services at 127.0.0.1: name them by port.
        "PROPYLON_ASSERTION_AUDIENCES": (
            f"127.0.0.1:{identity_port}=identity,127.0.0.1:{profiles_port}=profiles"
        ),
    }
    python = sys.executable
    with ExitStack() as stack:
        if backend != "sqlite":
            # SQLite is the services' default (a file under the data directory): left implicit.
            identity_env["DATABASE_URL"] = stack.enter_context(
                scratch_database(backend, directory, "identity")
            )
            profiles_env["DATABASE_URL"] = stack.enter_context(
                scratch_database(backend, directory, "profiles")
            )
        everyone: list[RunningProcess] = []
        identity = stack.enter_context(
            _process(
                "identity",
                [python, "-m", "identity", "--host", "127.0.0.1", "--port", str(identity_port)],
                identity_env,
                directory,
            )
        )
        everyone.append(identity)
        profiles = stack.enter_context(
            _process(
                "profiles",
                [python, "-m", "profiles", "--host", "127.0.0.1", "--port", str(profiles_port)],
                profiles_env,
                directory,
            )
        )
        everyone.append(profiles)
        _wait_until_ready(f"http://127.0.0.1:{identity_port}/healthz", identity, everyone)
        _wait_until_ready(f"http://127.0.0.1:{profiles_port}/healthz", profiles, everyone)
        config = gateway_config(directory, identity_port, profiles_port)
        gateway = stack.enter_context(
            _process(
                "gateway",
                [
                    python,
                    "-m",
                    "propylon",
                    "run",
                    "--config",
                    str(config),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(gateway_port),
                ],
                gateway_env,
                directory,
            )
        )
        everyone.append(gateway)
        # /stats answers loopback clients once the gateway is listening.
        _wait_until_ready(f"http://127.0.0.1:{gateway_port}/stats", gateway, everyone)
        yield RunningStack(
            backend, gateway_port, identity_port, profiles_port, public_keys, tuple(everyone)
        )
