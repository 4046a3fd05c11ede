"""Single HTTP requests: is a proxy up, and does it answer what the upstream would."""

from __future__ import annotations

import http.client
import time
from collections.abc import Mapping
from dataclasses import dataclass

from harness.processes import ProcessGroup


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


def request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> Answer | None:
    """One request on a fresh connection to 127.0.0.1:port; None when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_ready(
    port: int, path: str, group: ProcessGroup | None, timeout: float = 30.0
) -> Answer | None:
    """Poll until ``path`` answers 200; gives up early when the process group has exited."""
    deadline = time.monotonic() + timeout
    answer = None
    while time.monotonic() < deadline:
        answer = request(port, path, timeout=2.0)
        if answer is not None and answer.status == 200:
            return answer
        if group is not None and not group.running():
            return answer
        time.sleep(0.1)
    return answer


def header_pairs(headers: tuple[str, ...]) -> dict[str, str]:
    """``("Name: value", ...)`` as a mapping."""
    pairs = {}
    for line in headers:
        name, _, value = line.partition(":")
        pairs[name.strip()] = value.strip()
    return pairs
