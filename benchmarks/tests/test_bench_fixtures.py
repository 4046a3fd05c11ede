import json
import shlex
from pathlib import Path

from harness.entries import Entry, build_entries
from harness.upstream import BIG_BODY_BYTES, big_body


def test_the_big_body_is_64_kib_of_json() -> None:
    body = big_body()

    assert len(body) == BIG_BODY_BYTES == 65536
    assert len(json.loads(body)["items"]) > 100


def test_placeholders_become_shell_quoted_values() -> None:
    entry = Entry("x", "exec tool -p {run_dir}/ -w {workers} -c {config}")

    command = shlex.split(entry.shell_command(2, Path("/tmp/a b")))

    assert command[:4] == ["exec", "tool", "-p", "/tmp/a b/"]
    assert command[5] == "2"
    assert command[-1].endswith("benchmarks/routes.ocelot.json")


def test_an_overridden_propylon_is_not_held_to_the_gateway_checks() -> None:
    default = build_entries(None, ["direct"])
    overridden = build_entries("exec nginx", [])

    assert [(e.name, e.feature_checks) for e in default] == [
        ("nginx", False),
        ("propylon", True),
        ("direct", False),
    ]
    assert overridden[1].feature_checks is False
    assert default[2].command is None
