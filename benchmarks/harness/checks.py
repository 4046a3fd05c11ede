"""Before a run is measured, the proxy must answer what U answers, and propylon must really
authenticate: a fast wrong answer (a 401 for every request, features quietly off) is no
benchmark result."""

from __future__ import annotations

import http.client
import json
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from harness.entries import Entry
from harness.probe import Answer, request
from harness.scenarios import CLIENT_TRACEPARENT, Scenario
from harness.tokens import SUBJECT, rotation_subject

CHECK_UPLOAD_BYTES = 64 * 1024
WHOAMI_PATH = "/secure/whoami"
TRACED_PATH = "/profiles/traced"
"""Proxied by the plain profiles route to U's echo of the traceparent it received."""
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclass(frozen=True, slots=True)
class Fixtures:
    """What U answers, and the tokens requests carry."""

    profile_body: bytes
    big_body: bytes
    tokens: dict[str, str] = field(default_factory=dict)
    """One token per algorithm ("HS256", "RS256")."""
    rotation_files: dict[str, Path] = field(default_factory=dict)
    """Distinct tokens, one per line, per algorithm."""

    def first_rotation_token(self, algorithm: str) -> str:
        with self.rotation_files[algorithm].open() as lines:
            return lines.readline().strip()


def check_answers(port: int, scenario: Scenario, entry: Entry, fixtures: Fixtures) -> str:
    """Empty when all is right, else what is wrong (the run is then not measured)."""
    if scenario.upload:
        return _check_upload(port, scenario)
    headers = {}
    if scenario.bearer:
        token = (
            fixtures.first_rotation_token(scenario.algorithm)
            if scenario.rotate
            else fixtures.tokens[scenario.algorithm]
        )
        headers["Authorization"] = f"Bearer {token}"
        subject = rotation_subject(0) if scenario.rotate else SUBJECT
    if scenario.origin is not None:
        headers["Origin"] = scenario.origin
    expected = fixtures.big_body if scenario.path == "/big" else fixtures.profile_body
    answer = request(port, scenario.path, headers=headers)
    if answer is None or answer.status != 200:
        return f"GET {scenario.path}: {_what(answer)}, expected 200"
    if answer.body != expected:
        return f"GET {scenario.path}: body differs from U's ({len(answer.body)} bytes)"
    if entry.feature_checks and scenario.origin is not None:
        allowed = answer.headers.get("access-control-allow-origin")
        if allowed != scenario.origin:
            return f"GET {scenario.path}: Access-Control-Allow-Origin {allowed!r}, CORS is not on"
    if entry.feature_checks and scenario.config is not None and "ratelimit" not in answer.headers:
        return f"GET {scenario.path}: no RateLimit header, the rate limit is not on"
    if entry.feature_checks and scenario.traceparent:
        return _check_trace_continued(port)
    if entry.feature_checks and scenario.bearer:
        return _check_authentication(port, scenario, headers, subject)
    return ""


def _check_trace_continued(port: int) -> str:
    """U received the client's trace id with a span id of the gateway's own: the gateway
    parsed and continued the trace (rather than dropping or merely copying the header)."""
    answer = request(port, TRACED_PATH, headers={"traceparent": CLIENT_TRACEPARENT})
    if answer is None or answer.status != 200:
        return f"GET {TRACED_PATH}: {_what(answer)}, expected 200"
    try:
        sent = json.loads(answer.body).get("traceparent", "")
    except (ValueError, AttributeError):
        return f"GET {TRACED_PATH}: U's answer came back altered: {answer.body[:80]!r}"
    client = TRACEPARENT.fullmatch(CLIENT_TRACEPARENT)
    upstream = TRACEPARENT.fullmatch(sent)
    assert client is not None
    if upstream is None or upstream[1] != client[1] or upstream[2] == client[2]:
        return (
            f"GET {TRACED_PATH}: U got traceparent {sent!r}, expected trace {client[1]} "
            "with a new span id"
        )
    return ""


def check_tls_answer(
    port: int, scenario: Scenario, fixtures: Fixtures, context: ssl.SSLContext
) -> str:
    """The TLS listener verifies with the run's certificate and answers what U answers."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5.0, context=context)
    try:
        conn.request("GET", scenario.path)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"GET https://127.0.0.1:{port}{scenario.path}: {exc}"
    finally:
        conn.close()
    if response.status != 200 or body != fixtures.profile_body:
        return (
            f"GET https://127.0.0.1:{port}{scenario.path}: status {response.status} or not U's body"
        )
    return ""


def _check_authentication(
    port: int, scenario: Scenario, headers: dict[str, str], subject: str
) -> str:
    anonymous = request(port, scenario.path)
    if anonymous is None or anonymous.status != 401:
        return f"GET {scenario.path} without a token: {_what(anonymous)}, expected 401"
    # A client-sent identity header must be replaced by the token's subject.
    spoofed = request(port, WHOAMI_PATH, headers={**headers, "User": "mallory"})
    if spoofed is None or spoofed.status != 200:
        return f"GET {WHOAMI_PATH}: {_what(spoofed)}, expected 200"
    try:
        seen = json.loads(spoofed.body).get("user")
    except (ValueError, AttributeError):
        return f"GET {WHOAMI_PATH}: U's answer came back altered: {spoofed.body[:80]!r}"
    if seen != subject:
        return f"GET {WHOAMI_PATH}: U saw User {seen!r}, expected the token's {subject!r}"
    return ""


def _check_upload(port: int, scenario: Scenario) -> str:
    body = b"u" * CHECK_UPLOAD_BYTES
    answer = request(port, scenario.path, method="POST", body=body)
    if answer is None or answer.status != 200:
        return f"POST {scenario.path}: {_what(answer)}, expected 200"
    received = int(answer.headers.get("x-received-bytes", "0"))
    if received < len(body):
        return f"POST {scenario.path}: U received {received} of {len(body)} body bytes"
    return ""


def _what(answer: Answer | None) -> str:
    return "no answer" if answer is None else f"status {answer.status}"
