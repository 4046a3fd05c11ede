"""Who serves a TCP port on this machine: the checks `propylon run` and `make run` make before
they listen, and after.

Workers of one ``propylon run --workers N`` share their port through SO_REUSEPORT, which the
kernel grants to any socket of the same user that asks for it, so a second instance would
silently join the first and the two configs would answer at random. Hence:

- ``bind_problem``: a listener that binds the address *without* SO_REUSEPORT fails while
  anything listens there (another propylon, or anything else).
- ``PortClaim``: a propylon instance claims host:port for its whole life with an abstract
  Unix socket named after the address (Linux; it disappears with the last process holding
  it, however it ends). A second instance learns the first one's pid from it, and two
  instances starting at the same moment cannot both pass the check.
- ``served_by``: whether a listening socket on a port belongs to a process or its children
  (``/proc``), so `make run` confirms readiness against the processes it started, not
  whatever answers on the port.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from pathlib import Path

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_TCP_LISTEN = "0A"


def bind_problem(host: str, port: int) -> str | None:
    """Why a socket could not listen on host:port by itself (None when it could)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # TIME_WAIT leftovers of an earlier run do not count; a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


class PortTakenError(Exception):
    """Another propylon instance serves the address."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        who = f"another propylon (pid {pid})" if pid else "another propylon"
        super().__init__(f"{who} already serves this port")


class PortClaim:
    """This instance's claim to host:port, held until ``release`` or process exit."""

    def __init__(self, host: str, port: int) -> None:
        self.name = f"\0propylon:{host}:{port}".encode()
        self._socket: socket.socket | None = None

    def acquire(self) -> None:
        """Claim the address, or raise PortTakenError naming the instance that has it.
        Where abstract Unix sockets do not exist (not Linux), this claims nothing."""
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(self.name)
        except OSError as exc:
            claim.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortTakenError(self._holder()) from None
            return
        # Forked workers share it: the claim lasts while any process of the instance serves.
        claim.listen(8)  # never accepted: a connection only tells the kernel who we are
        self._socket = claim

    def _holder(self) -> int | None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(self.name)
                cred = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            except OSError:
                return None  # its backlog is full, or it just exited
            pid: int = _PEERCRED.unpack(cred)[0]
            return pid or None

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _listening_inodes(port: int) -> set[int] | None:
    """Inodes of the TCP sockets listening on ``port`` (any address); None without /proc."""
    found: set[int] = set()
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    for table in tables:
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == _TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                    found.add(int(inode))
    return found


def _family(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


def _socket_inodes(pid: int) -> set[int]:
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    found.add(int(target[8:-1]))
    return found


def served_by(port: int, pid: int) -> bool | None:
    """Whether process ``pid`` (or one of its children) listens on ``port``; None when this
    system cannot tell (no /proc)."""
    listening = _listening_inodes(port)
    if listening is None:
        return None
    return any(listening & _socket_inodes(member) for member in _family(pid))
