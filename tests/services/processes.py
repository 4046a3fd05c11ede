"""A service as a real process (`python -m identity` / `python -m profiles`), for what an
operator sees: whether it starts, and what it prints when it refuses to."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from tests.support.upstreams import free_port

# Variables of the developer's shell that would change what the process does.
_INHERITED_OUT = ("DATABASE_URL",)
_INHERITED_OUT_PREFIXES = ("IDENTITY_", "PROFILES_", "SERVICEKIT_")

CHEAP_ARGON2 = {
    "IDENTITY_ARGON2_TIME_COST": "1",
    "IDENTITY_ARGON2_MEMORY_KIB": "8",
    "IDENTITY_ARGON2_PARALLELISM": "1",
}


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _INHERITED_OUT and not name.startswith(_INHERITED_OUT_PREFIXES)
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@dataclass(frozen=True, slots=True)
class Refusal:
    returncode: int
    output: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.strip()]


def refused_start(service: str, env: Mapping[str, str], timeout: float = 60) -> Refusal:
    """Run the service and expect it to exit on its own, refusing to start."""
    result = subprocess.run(
        [sys.executable, "-m", service, "--port", str(free_port()), "--log-level", "warning"],
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode != 0, f"{service} started:\n{result.stdout}\n{result.stderr}"
    return Refusal(result.returncode, result.stdout + result.stderr)
