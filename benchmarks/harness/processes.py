"""Processes the harness starts: each in its own session, measured and stopped as a group.

A command runs as ``[taskset -c CPUS] bash -c COMMAND`` with ``start_new_session``, so its pid
is also its process-group and session id. Everything it forks (nginx workers, propylon's
worker processes) stays in that session, which is how CPU time and memory are summed and how
the whole tree is stopped, by group id only, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Launchers between the harness and the measured program; their memory is not the proxy's.
WRAPPERS = frozenset({"bash", "sh", "taskset", "env", "setsid"})
STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class SessionProcess:
    pid: int
    command: str
    state: str
    user_ticks: int
    system_ticks: int


class ProcessGroup:
    """A command started in its own session; ``pid == pgid == sid``."""

    def __init__(
        self, name: str, command: str, cpus: str, env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        argv = ["bash", "-c", command]
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
        )
        self.pgid = self.proc.pid
        RUNNING.append(self)

    def processes(self) -> list[SessionProcess]:
        """Every live process of the session, the wrappers included."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # The command name may contain spaces and parentheses: split after the last ')'.
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[3]) != self.pgid:
                continue
            command = stat[stat.find("(") + 1 : stat.rfind(")")]
            found.append(
                SessionProcess(int(entry), command, fields[0], int(fields[11]), int(fields[12]))
            )
        return found

    def cpu_ticks(self) -> tuple[int, int]:
        """(user, system) clock ticks of the session's live processes."""
        procs = self.processes()
        return sum(p.user_ticks for p in procs), sum(p.system_ticks for p in procs)

    def memory_kib(self, field: str) -> int:
        """``VmRSS`` or ``VmHWM`` (peak) summed over the session, wrappers excluded."""
        total = 0
        for proc in self.processes():
            if proc.command in WRAPPERS:
                continue
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        return total

    def running(self) -> bool:
        """True while any process of the session is alive (a zombie leader does not count)."""
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        self.proc.poll()
        return any(p.state != "Z" for p in self.processes())

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after the grace period; always closes the log."""
        if self.running():
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while time.monotonic() < deadline and self.running():
                time.sleep(0.05)
            if self.running():
                self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()
        if self in RUNNING:
            RUNNING.remove(self)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)


RUNNING: list[ProcessGroup] = []
"""Groups started and not yet stopped; ``stop_all`` empties it on exit or interruption."""
CLIENTS: list[subprocess.Popen[str]] = []
"""Load generators in flight (wrk, the upload client): bounded, but stopped early on Ctrl-C."""


def start_client(argv: list[str]) -> subprocess.Popen[str]:
    """Start a load generator; collect it with ``finish_client``."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    )
    CLIENTS.append(proc)
    return proc


def finish_client(proc: subprocess.Popen[str], timeout: float) -> str:
    """Its stdout and stderr, interleaved; killed when still running after ``timeout``."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += f"\n[harness] killed after {timeout:.0f} s\n"
    finally:
        CLIENTS.remove(proc)
    return out


def run_client(argv: list[str], timeout: float) -> str:
    return finish_client(start_client(argv), timeout)


def stop_all() -> None:
    for client in list(CLIENTS):
        client.kill()
    for group in list(RUNNING):
        with contextlib.suppress(OSError):
            group.stop()


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port_free(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_in_use(port):
            return True
        time.sleep(0.1)
    return False


def busy_ticks_per_cpu() -> dict[str, tuple[int, int]]:
    """``{"cpuN": (busy, total)}`` jiffies from /proc/stat."""
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            name, *values = line.split()
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, values[:8])
            busy = user + nice + system + irq + softirq + steal
            result[name] = (busy, busy + idle + iowait)
    return result
