"""The real ``propylon`` command in a subprocess: output, exit codes, and ``run`` start-up."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SECRET = "functional-secret-0123456789abcdef"

OCELOT = {
    "Routes": [
        {
            "UpstreamPathTemplate": "/api/v1/user/login",
            "UpstreamHttpMethod": ["POST"],
            "DownstreamPathTemplate": "/identity/login",
            "DownstreamScheme": "http",
            "DownstreamHostAndPorts": [{"Host": "identityapi", "Port": 8080}],
        },
        {
            "UpstreamPathTemplate": "/api/v1/status/{id}",
            "UpstreamHttpMethod": ["GET"],
            "DownstreamPathTemplate": "/status/{id}",
            "DownstreamScheme": "http",
            "DownstreamHostAndPorts": [{"Host": "statusapi", "Port": 8080}],
            "AuthenticationOptions": {"AuthenticationProviderKey": "Bearer"},
        },
    ],
    "GlobalConfiguration": {"BaseUrl": "http://localhost:9000"},
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPYLON_")}
    env.update(extra)
    return env


def propylon(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "propylon", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=env if env is not None else clean_env(PROPYLON_JWT_SECRET=SECRET),
    )


@pytest.fixture
def ocelot_file(tmp_path: Path) -> Path:
    path = tmp_path / "ocelot.json"
    path.write_text(json.dumps(OCELOT))
    return path


# What check says about exposure and identity, for OCELOT's two routes.
SUMMARY = [
    "public routes (served without a token): 1 of 2",
    "  Routes[0]  POST /api/v1/user/login",
    "identity header User: the token's sub on every authenticated route",
    "signed gateway assertions: off (services see only the identity header)",
]


def test_check_good_file(ocelot_file: Path) -> None:
    done = propylon("check", str(ocelot_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        *SUMMARY,
        f"{ocelot_file}: OK (2 routes, format ocelot)",
    ]


def test_check_reports_every_problem_with_file_and_key_path(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(OCELOT))
    bad["Routes"][0]["DownstreamHostAndPorts"][0]["Port"] = 70000
    bad["Routes"][1]["UpstreamHttpMethod"] = ["GRAB"]
    bad["Routes"].append(dict(bad["Routes"][0], DownstreamHostAndPorts=[]))
    path = tmp_path / "Routes.json"
    path.write_text(json.dumps(bad))
    done = propylon("check", str(path), env=clean_env())
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{path}: Routes[0].DownstreamHostAndPorts[0].Port: error: port must be 1-65535, got 70000",
        f"{path}: Routes[1].UpstreamHttpMethod[0]: error: unknown HTTP method 'GRAB'; use one "
        "of DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
        f"{path}: Routes[2].DownstreamHostAndPorts: error: at least one {{Host, Port}} is required",
        # cross-references are checked after every route has been read
        f"{path}: Routes[1].AuthenticationOptions.AuthenticationProviderKey: error: needs the "
        "'Bearer' auth provider, which is not defined: set PROPYLON_JWT_SECRET (HS256 secret), "
        "PROPYLON_JWT_PUBLIC_KEY (PEM file) or PROPYLON_JWKS_URL, plus optionally "
        "PROPYLON_JWT_ALGORITHMS",
    ]


def test_check_finds_duplicate_routes(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "- {method: get, path_regex: ^/a$, service_url: 'http://a', auth_required: false}\n"
        "- {method: get, path_regex: ^/a$, service_url: 'http://b', auth_required: false}\n"
    )
    done = propylon("check", str(path))
    assert done.returncode == 1
    assert done.stdout.startswith(f"{path}: [1]: error: duplicate of [0]")


def test_check_warnings_pass_unless_strict(tmp_path: Path) -> None:
    with_warning = json.loads(json.dumps(OCELOT))
    with_warning["Routes"][0]["FileCacheOptions"] = {"TtlSeconds": 15}
    path = tmp_path / "ocelot.json"
    path.write_text(json.dumps(with_warning))
    expected = [
        f"{path}: Routes[0].FileCacheOptions: warning: not implemented by propylon yet; ignored",
        *SUMMARY,
        f"{path}: OK (2 routes, format ocelot, 1 warning)",
    ]
    done = propylon("check", str(path))
    assert (done.returncode, done.stdout.splitlines()) == (0, expected)
    done = propylon("check", "--strict", str(path))
    assert (done.returncode, done.stdout.splitlines()) == (1, expected)


def test_check_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("routes:\n  - path: /a\n    downstream: {hosts: [a]\n")
    done = propylon("check", str(path))
    assert done.returncode == 1
    assert re.fullmatch(rf"{re.escape(str(path))}:4:1: error: invalid YAML: .*\n", done.stdout)


def test_format_override(ocelot_file: Path) -> None:
    done = propylon("check", "--format", "seed", str(ocelot_file))
    assert done.returncode == 1
    assert done.stdout == (
        f"{ocelot_file}: error: a seed route file is a list of routes, got a mapping\n"
    )


def test_routes_prints_the_table(ocelot_file: Path) -> None:
    done = propylon("routes", str(ocelot_file))
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == f"{ocelot_file}: 2 routes, format ocelot, tried top to bottom"
    assert out[2].split()[:5] == ["1", "Routes[0]", "1", "POST", "/api/v1/user/login"]
    assert "-> http://statusapi:8080/status/{id}" in out[3]
    assert "token from Bearer" in out[3]


def test_routes_and_explain_refuse_a_bad_config(ocelot_file: Path) -> None:
    for args in (("routes", str(ocelot_file)), ("explain", str(ocelot_file), "GET", "/")):
        done = propylon(*args, env=clean_env())
        assert done.returncode == 2
        assert done.stdout == ""
        assert "needs the 'Bearer' auth provider" in done.stderr
        assert done.stderr.endswith(f"{ocelot_file}: not usable (1 error)\n")


def test_explain_match_and_miss(ocelot_file: Path) -> None:
    done = propylon(
        "explain",
        str(ocelot_file),
        "GET",
        "http://gw:9000/api/v1/status/7?v=1",
        "-H",
        "Authorization: Bearer x",
    )
    assert done.returncode == 0, done.stderr
    assert 'route:          Routes[1] "GET /api/v1/status/{id}"' in done.stdout
    assert "downstream:     http://statusapi:8080/status/7?v=1\n" in done.stdout
    assert "auth:           token from Bearer\n" in done.stdout
    done = propylon("explain", str(ocelot_file), "GET", "/api/v1/user/login")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        "result:         405 MethodNotAllowed: the path matches, the method does not; Allow: POST"
    )
    done = propylon("explain", str(ocelot_file), "GET", "/", "-H", "nonsense")
    assert done.returncode == 2
    assert "expected 'Name: value'" in done.stderr


def test_usage_errors_exit_2(ocelot_file: Path) -> None:
    assert propylon().returncode == 2
    assert propylon("run").returncode == 2
    assert propylon("run", "--config", str(ocelot_file), "--port", "70000").returncode == 2
    done = propylon("--version")
    assert (done.returncode, done.stdout.startswith("propylon ")) == (0, True)


def test_run_refuses_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("routes:\n  - {path: /a, downstream: {hosts: ['a:0']}}\n")
    done = propylon("run", "--config", str(path), "--port", "0")
    assert done.returncode == 2
    assert f"{path}: routes[0].downstream.hosts[0]: error: port must be 1-65535, got 0" in (
        done.stderr
    )


def test_run_starts_the_gateway_and_stops_on_sigterm(ocelot_file: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "propylon",
            "run",
            "--config",
            str(ocelot_file),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(PROPYLON_JWT_SECRET=SECRET),
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        port = None
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        assert port is not None, "the gateway did not report its port"
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-route", timeout=5)
        assert caught.value.code == 404
        assert json.loads(caught.value.read())["codemessage"] == "RouteNotFound"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


ROOT = Path(__file__).resolve().parents[2]


def _doc_examples() -> list[tuple[list[str], list[str]]]:
    """Each ``$ [VAR=...] propylon ARGS`` in docs/cli.md whose files ship with the repository,
    with the lines the doc shows it printing."""
    import shlex

    examples: list[tuple[list[str], list[str]]] = []
    command: list[str] | None = None
    shown: list[str] = []
    for line in (ROOT / "docs" / "cli.md").read_text().splitlines():
        if line.startswith("```") or line.startswith("$ "):
            if command is not None:
                examples.append((command, shown))
            command, shown = None, []
            if line.startswith("$ "):
                words = [w for w in shlex.split(line[2:]) if "=" not in w.split("/")[0]]
                if words[:1] == ["propylon"] and (ROOT / words[2]).exists():
                    command = words[1:]
        elif command is not None:
            shown.append(line)
    return examples


@pytest.mark.parametrize(
    ("command", "shown"), _doc_examples(), ids=[" ".join(c) for c, _ in _doc_examples()]
)
def test_the_cli_doc_shows_what_the_commands_print(command: list[str], shown: list[str]) -> None:
    result = propylon(*command, cwd=ROOT)
    assert result.stdout.splitlines() == shown


def test_check_says_which_claim_each_route_sends_as_the_identity(tmp_path: Path) -> None:
    routes = json.loads(json.dumps(OCELOT["Routes"]))
    routes[1]["AddHeadersToRequest"] = {"user": "Claims[email] > value"}
    routes.append({**routes[1], "UpstreamPathTemplate": "/me", "DownstreamPathTemplate": "/me"})
    routes[2]["AddHeadersToRequest"] = {"User": "Claims[sub] > value"}
    path = tmp_path / "ocelot.json"
    path.write_text(json.dumps({"Routes": routes}))
    result = propylon("check", str(path))
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    at = lines.index("identity header User: the token's sub, except on 1 route:")
    assert lines[at + 1] == "  Routes[1]  GET /api/v1/status/{id}: claim 'email'"
    assert lines[-1] == f"{path}: OK (3 routes, format ocelot)"


def test_check_fails_on_a_misspelt_security_key_that_would_leave_a_route_public(
    tmp_path: Path,
) -> None:
    routes = json.loads(json.dumps(OCELOT["Routes"]))
    routes[1]["AuthenticationOption"] = routes[1].pop("AuthenticationOptions")
    path = tmp_path / "ocelot.json"
    path.write_text(json.dumps({"Routes": routes}))
    done = propylon("check", str(path))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{path}: Routes[1].AuthenticationOption: error: unknown key, a near miss of "
        "AuthenticationOptions: as written it is ignored and the route is served as if it had "
        "no AuthenticationOptions; did you mean AuthenticationOptions?"
    ]
    done = propylon("run", "--config", str(path), "--port", "0")
    assert done.returncode == 2 and "Routes[1].AuthenticationOption: error" in done.stderr


def test_run_logs_which_routes_are_public(ocelot_file: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "propylon", "run", "--config", str(ocelot_file), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(PROPYLON_JWT_SECRET=SECRET),
    )
    try:
        assert proc.stderr is not None
        logged: list[str] = []
        deadline = time.monotonic() + 20
        last = SUMMARY[-1]
        while time.monotonic() < deadline and last not in logged:
            line = proc.stderr.readline()
            if not line:
                break
            logged.append(line.rstrip("\n").split(" propylon: ", 1)[-1])
        at = logged.index(SUMMARY[0])
        assert logged[at : at + len(SUMMARY)] == SUMMARY, logged
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
