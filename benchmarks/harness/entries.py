"""The proxies compared: how each one is started for a scenario.

Every command runs under ``bash -c`` in the foreground, listens on 127.0.0.1:8000 and forwards
to U on 127.0.0.1:9001. A command is a template; these placeholders are replaced (shell-quoted):
``{workers}``, ``{run_dir}`` (a scratch folder: nginx prefix, temp files), ``{bench_dir}`` (this
folder's configs), ``{config}`` (routes.ocelot.json) and ``{propylon}`` (the executable next to
the running Python). ``direct`` is no proxy at all: the load goes to U itself, the ceiling.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
ROUTES_FILE = BENCH_DIR / "routes.ocelot.json"
REFERENCE = "nginx"
GATEWAY = "propylon"

NGINX_COMMAND = (
    "exec nginx -p {run_dir}/ -c {bench_dir}/proxy-nginx.conf -e stderr "
    "-g 'daemon off; worker_processes {workers};'"
)
PROPYLON_COMMAND = (
    "exec {propylon} run --config {config} --host 127.0.0.1 --port 8000 --workers {workers}"
)
# The TLS scenario (harness/tls.py): the same proxies with a TLS listener on 8443 as well.
NGINX_TLS_COMMAND = NGINX_COMMAND.replace(
    "{bench_dir}/proxy-nginx.conf", "{tls_dir}/proxy-nginx-tls.conf"
)
PROPYLON_TLS_COMMAND = (
    PROPYLON_COMMAND + " --tls-cert {tls_dir}/cert.pem --tls-key {tls_dir}/key.pem --tls-port 8443"
)
HAPROXY_COMMAND = "HAP_THREADS={workers} exec haproxy -db -f {bench_dir}/haproxy.cfg"
OPTIONAL = ("direct", "haproxy")


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    command: str | None
    """None for ``direct``."""
    feature_checks: bool = False
    """Check before measuring that authentication and the identity header are really on."""
    tls_command: str | None = None
    """The command with a TLS listener on 8443 (None: this entry is not in TLS scenarios)."""

    def shell_command(
        self,
        workers: int,
        run_dir: Path,
        tls_dir: Path | None = None,
        config: Path = ROUTES_FILE,
    ) -> str:
        command = self.command if tls_dir is None else self.tls_command
        assert command is not None
        values = {
            "tls_dir": str(tls_dir),
            "workers": str(workers),
            "run_dir": str(run_dir),
            "bench_dir": str(BENCH_DIR),
            "config": str(config),
            "propylon": str(Path(sys.executable).parent / "propylon"),
        }
        for key, value in values.items():
            command = command.replace("{" + key + "}", shlex.quote(value))
        return command


def build_entries(propylon_command: str | None, extras: list[str]) -> list[Entry]:
    """nginx and propylon, then the requested extras; ValueError for an unknown or missing one.

    An overridden propylon command (say a second nginx, to test the harness) skips the feature
    checks: they are about the gateway, not about whatever stands in for it.
    """
    entries = [
        Entry(REFERENCE, NGINX_COMMAND, tls_command=NGINX_TLS_COMMAND),
        Entry(
            GATEWAY,
            propylon_command or PROPYLON_COMMAND,
            feature_checks=not propylon_command,
            tls_command=None if propylon_command else PROPYLON_TLS_COMMAND,
        ),
    ]
    for name in extras:
        if name == "direct":
            entries.append(Entry("direct", None))
        elif name == "haproxy":
            if shutil.which("haproxy") is None:
                raise ValueError(
                    "haproxy is not installed (benchmarks/ensure-tools --with-haproxy)"
                )
            entries.append(Entry("haproxy", HAPROXY_COMMAND))
        else:
            raise ValueError(f"unknown extra entry {name!r} (known: {', '.join(OPTIONAL)})")
    return entries
