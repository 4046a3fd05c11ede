"""U, the static upstream every proxy forwards to: nginx on 127.0.0.1:9001."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path

from harness.checks import Fixtures
from harness.entries import BENCH_DIR
from harness.measure import UPSTREAM_PORT
from harness.probe import request, wait_ready
from harness.processes import ProcessGroup
from harness.scenarios import PROFILE_PATH

BIG_BODY_BYTES = 64 * 1024


def big_body() -> bytes:
    """A JSON document of exactly 64 KiB (a list of order lines, padded)."""
    items = [{"sku": f"SKU-{n:05d}", "qty": n % 7 + 1, "price": 1999} for n in range(1000)]
    head = json.dumps({"items": items}, separators=(",", ":"))[:-1]
    while len(head) > BIG_BODY_BYTES - 64:
        items.pop()
        head = json.dumps({"items": items}, separators=(",", ":"))[:-1]
    pad = BIG_BODY_BYTES - len(head) - len(',"pad":""}')
    return (head + ',"pad":"' + "x" * pad + '"}').encode()


def start_upstream(
    run_dir: Path, cpus: str, env: Mapping[str, str], log_path: Path
) -> ProcessGroup:
    (run_dir / "static").mkdir(parents=True, exist_ok=True)
    (run_dir / "static" / "big").write_bytes(big_body())
    command = (
        f"exec nginx -p {shlex.quote(str(run_dir))}/ "
        f"-c {shlex.quote(str(BENCH_DIR / 'upstream-nginx.conf'))} "
        "-e stderr -g 'daemon off; worker_processes 1;'"
    )
    return ProcessGroup("upstream", command, cpus, env, log_path)


def upstream_answers(group: ProcessGroup) -> Fixtures | str:
    """What U answers on the bench paths, or why it does not."""
    profile = wait_ready(UPSTREAM_PORT, PROFILE_PATH, group)
    if profile is None or profile.status != 200:
        return f"U did not answer 200 on 127.0.0.1:{UPSTREAM_PORT}; see logs/upstream.log"
    big = request(UPSTREAM_PORT, "/big")
    if big is None or big.status != 200 or len(big.body) != BIG_BODY_BYTES:
        return "U does not serve the 64 KiB /big body (can nginx's worker user read the out dir?)"
    return Fixtures(profile_body=profile.body, big_body=big.body)
