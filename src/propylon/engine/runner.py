"""Process model: one worker in-process, or N forked workers sharing the port.

With ``--workers N`` each worker binds its own listening socket with SO_REUSEPORT, so the
kernel spreads connections across processes without a shared accept lock. The parent only
supervises: it forwards SIGTERM/SIGINT, restarts a worker that died unexpectedly, and exits 0
after every worker drained. Workers are forked before any event loop exists.

SO_REUSEPORT would just as gladly let a second instance's workers join the first's, so
before anything listens an instance claims its address (``ports.PortClaim``) and checks that
nothing else listens there (``ports.bind_problem``): only the workers of one instance share
a port.

With an admin listener (``--admin`` or the ``admin`` block) the gateway is always
supervised, even with one worker: the listener runs in its own process beside the workers
(``admin/process.py`` says why), bound here by the supervisor, and reads the workers'
numbers and readiness from the run directory.

``SIGHUP`` reloads the TLS certificate and the config (``engine/reload.py``): the supervisor
validates the file and hands the workers the validated text; a lone worker does both itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import uvloop

from propylon.admin import readiness
from propylon.config.model import AdminSpec, GatewayConfig
from propylon.config.source import ConfigSource, Loaded
from propylon.engine import reload
from propylon.engine.allocator import tune_for_streaming
from propylon.engine.discovered import DiscoveryFailed
from propylon.engine.gateway import Gateway
from propylon.http.tls import TlsFilesError
from propylon.logs.structured import log_startup
from propylon.ports import PortClaim, PortTakenError, bind_problem

if TYPE_CHECKING:
    from propylon.logs.access import AccessLog

log = logging.getLogger("propylon")

RESTART_BACKOFF = 1.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def serve(
    config: GatewayConfig,
    *,
    host: str,
    port: int,
    workers: int = 1,
    source: ConfigSource | None = None,
    loaded: Loaded | None = None,
    watch_config: bool = False,
) -> int:
    """Run the gateway until SIGTERM or SIGINT; returns the process exit code. With the
    config's ``source`` (and what was ``loaded`` from it), SIGHUP reloads it, and so does a
    change of the file with ``watch_config``."""
    watcher: int | None = None
    if watch_config and source is not None:
        from propylon.engine import config_watch

        if not config_watch.available():
            log.error("--watch-config needs watchfiles: %s", config_watch.EXTRA)
            return 2
        # First, before any socket exists: the watcher inherits none of them.
        parent = os.getpid()
        watcher = config_watch.start(source.path, parent, lambda: _die_with_parent(parent))
    try:
        return _serve(config, host, port, workers, source, loaded)
    finally:
        if watcher is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(watcher, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(watcher, 0)


def _serve(
    config: GatewayConfig,
    host: str,
    port: int,
    workers: int,
    source: ConfigSource | None,
    loaded: Loaded | None,
) -> int:
    listen: list[tuple[int, str]] = []  # (port, the flag that sets it)
    if config.tls is None or not config.tls.only:
        listen.append((port, "--port"))
    if config.tls is not None:
        if not config.tls.only and config.tls.port == port and port != 0:
            log.error("--tls-port and --port are both %d: give the TLS listener its own", port)
            return 2
        listen.append((config.tls.port, "--tls-port"))
    if workers > 1 and any(p == 0 for p, _flag in listen):
        flags = " and ".join(flag for p, flag in listen if p == 0)
        log.error("--workers needs an explicit %s: each worker binds the same port", flags)
        return 2
    claims: list[PortClaim] = []
    try:
        for number, flag in listen:
            if number == 0:
                continue
            claim = PortClaim(host, number)
            problem = _port_problem(claim, host, number, flag)
            if problem is not None:
                log.error("cannot listen on %s:%d: %s", host, number, problem)
                return 1
            claims.append(claim)
        admin_socket: socket.socket | None = None
        if config.admin is not None:
            admin_socket = _admin_socket(config.admin, claims)
            if admin_socket is None:
                return 1
        if workers <= 1 and admin_socket is None:
            return run_worker(
                config,
                host=host,
                port=port,
                source=source,
                digest=loaded.digest if loaded is not None else "",
            )
        try:
            return _supervise(
                config,
                host=host,
                port=port,
                workers=workers,
                admin_socket=admin_socket,
                source=source,
                loaded=loaded,
            )
        finally:
            if admin_socket is not None:
                admin_socket.close()
    finally:
        for claim in claims:
            claim.release()


def _admin_socket(spec: AdminSpec, claims: list[PortClaim]) -> socket.socket | None:
    """The admin listener's socket, bound and listening before any process forks (so a
    taken port is an error at start-up, and a restarted admin process reuses it); None
    after logging why not."""
    if spec.port != 0:
        claim = PortClaim(spec.host, spec.port)
        problem = _port_problem(claim, spec.host, spec.port, "--admin port")
        if problem is not None:
            log.error("cannot listen on %s:%d (admin): %s", spec.host, spec.port, problem)
            return None
        claims.append(claim)
    family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((spec.host, spec.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        log.error("cannot listen on %s:%d (admin): %s", spec.host, spec.port, exc.strerror or exc)
        return None
    shown = f"[{spec.host}]" if ":" in spec.host else spec.host
    bound_port = sock.getsockname()[1]
    guard = "token required" if spec.token is not None else "loopback, no token"
    log.info("admin listener on http://%s:%d (%s)", shown, bound_port, guard)
    return sock


def _port_problem(claim: PortClaim, host: str, port: int, flag: str = "--port") -> str | None:
    """Why this instance may not serve host:port (another propylon, or anything else
    listening there), or None once the address is claimed."""
    try:
        claim.acquire()
    except PortTakenError as taken:
        return f"{taken}; stop it or choose another {flag}"
    problem = bind_problem(host, port)
    if problem is not None:
        claim.release()
        return f"{problem} (another process listens there); stop it or choose another {flag}"
    return None


def run_worker(
    config: GatewayConfig,
    *,
    host: str,
    port: int,
    worker_id: int = 0,
    workers: int = 1,
    run_dir: str | None = None,
    source: ConfigSource | None = None,
    digest: str = "",
) -> int:
    tune_for_streaming()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(
            _worker_main(config, host, port, worker_id, workers, run_dir, source, digest)
        )


async def _worker_main(
    config: GatewayConfig,
    host: str,
    port: int,
    worker_id: int,
    workers: int,
    run_dir: str | None,
    source: ConfigSource | None,
    digest: str,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    access_log = _access_log(config, worker_id)
    gateway = Gateway(
        config,
        worker_id=worker_id,
        workers=workers,
        run_dir=run_dir,
        digest=digest,
        access_log=access_log,
    )
    # SIGHUP reloads the TLS certificate (each worker its own context) and the config (the
    # supervisor validated it and forwards the signal; a lone worker validates it itself).
    reloads: set[asyncio.Task[None]] = set()

    def on_hangup() -> None:
        _reload_certificate(gateway, worker_id, source is not None)
        task = loop.create_task(reload.apply_in_worker(gateway, source, run_dir, worker_id))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    # SIGUSR1 reopens the access log (logrotate's convention; the supervisor forwards it).
    loop.add_signal_handler(signal.SIGUSR1, _reopen, access_log, worker_id)
    if access_log is not None:
        access_log.start(loop)
    try:
        await gateway.start(host, port, reuse_port=workers > 1)
    except OSError as exc:
        log.error("cannot listen on %s: %s", host, exc.strerror or exc)
        await gateway.stop(0)
        return 1
    except TlsFilesError as exc:
        for problem in exc.problems:
            log.error("cannot start the TLS listener: %s: %s", problem.file, problem.message)
        await gateway.stop(0)
        return 1
    except DiscoveryFailed as exc:
        log.error("cannot start: DNS discovery found no address: %s", exc)
        await gateway.stop(0)
        return 1
    if run_dir is not None:
        reload.acknowledge(run_dir, worker_id, digest, None)
        readiness.mark(run_dir, worker_id, readiness.READY)
        if gateway.stats_exchange is not None:
            gateway.stats_exchange.extras = lambda: _state_health(gateway)
    if worker_id == 0:
        shown = f"[{host}]" if ":" in host else host
        urls = (
            []
            if gateway.tls is not None and gateway.tls.spec.only
            else [f"http://{shown}:{gateway.port}"]
        )
        if gateway.tls is not None:
            urls.append(f"https://{shown}:{gateway.tls.port}")
        log_startup(config, urls, workers)
    await stop.wait()
    loop.remove_signal_handler(signal.SIGHUP)
    loop.remove_signal_handler(signal.SIGUSR1)
    if run_dir is not None:
        readiness.mark(run_dir, worker_id, readiness.DRAINING)
    log.info("worker %d draining", worker_id)
    await gateway.stop()
    if access_log is not None:
        # After the drain: the lines of every request served, the last ones included.
        access_log.close()
    return 0


def _has_rate_limits(config: GatewayConfig) -> bool:
    """Whether the workers opened a state store (only routes with limits open one)."""
    return any(spec.rate_limits or spec.ocelot_rate_limit for spec in config.routes)


def _state_health(gateway: Gateway) -> dict[str, object]:
    """The state store's health for the admin process, from the config serving now."""
    if not _has_rate_limits(gateway.config):
        return {}
    store = gateway.site.state
    return {
        "state": {
            "kind": store.kind,
            "down": store.health.down,
            "outages": store.health.outages,
            "failed_decisions": store.health.failed_decisions,
        }
    }


def _access_log(config: GatewayConfig, worker_id: int) -> AccessLog | None:
    if config.access_log is None:
        return None
    # Imported only when on: a gateway without an access log never loads its code.
    from propylon.logs.access import AccessLog

    return AccessLog(
        config.access_log,
        trusted_proxies=config.trusted_proxies,
        request_id_header=config.request_id_header,
        worker_id=worker_id,
    )


def _reopen(access_log: AccessLog | None, worker_id: int) -> None:
    if access_log is None:
        if worker_id == 0:
            log.info("SIGUSR1: no access log, nothing to reopen")
        return
    access_log.reopen()


def _reload_certificate(gateway: Gateway, worker_id: int, config_too: bool) -> None:
    if gateway.tls is None:
        if worker_id == 0 and not config_too:
            log.info("SIGHUP: no TLS listener, nothing to reload")
        return
    gateway.tls.reload()


def _die_with_parent(parent: int) -> None:
    """A worker drains and exits when the supervisor dies, even by SIGKILL.

    Without this, killing the supervisor hard (an OOM kill, a careless `kill -9`) leaves
    workers serving the port with nobody to restart or stop them.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: best effort only
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _supervise(
    config: GatewayConfig,
    *,
    host: str,
    port: int,
    workers: int,
    admin_socket: socket.socket | None = None,
    source: ConfigSource | None = None,
    loaded: Loaded | None = None,
) -> int:
    run_dir = tempfile.mkdtemp(prefix="propylon-")
    reloader = (
        reload.Reloader(source, config, loaded.digest, os.environ, run_dir)
        if source is not None and loaded is not None
        else None
    )
    if reloader is not None and loaded is not None:
        reloader.start(loaded.text)
    reloading = False
    again = False
    parent = os.getpid()
    children: dict[int, int] = {}  # pid -> worker id
    admin_pid: int | None = None
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        # Workers only: the admin process answers /readyz (503, draining) until they are gone.
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        _stop_admin_when_alone()

    def _stop_admin_when_alone() -> None:
        if stopping and not children and admin_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(admin_pid, signal.SIGTERM)

    def on_hangup(_signum: int, _frame: object) -> None:
        # Runs between two of the main loop's steps; a SIGHUP that arrives during a reload
        # makes it run once more afterwards rather than nest.
        nonlocal reloading, again
        if reloading:
            again = True
            return
        reloading = True
        try:
            again = True
            while again:
                again = False
                if reloader is not None:
                    try:
                        reloader.reload()
                    except Exception:  # the supervisor must outlive any reload
                        log.exception("config reload failed unexpectedly; still serving")
                # Always forwarded: the workers reload their TLS certificate either way.
                for pid in list(children):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGHUP)
        finally:
            reloading = False

    def on_user1(_signum: int, _frame: object) -> None:
        # SIGUSR1 (reopen the access log) is the workers' business.
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    def spawn(worker_id: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            # Until the worker's loop handles it: ignored, not forwarded to the siblings
            # this copy of ``children`` names.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
            if admin_socket is not None:
                admin_socket.close()  # the admin process's, not the data plane's
            _die_with_parent(parent)
            code = 1
            try:
                # The version serving now: a worker restarted after a reload serves it too.
                code = run_worker(
                    reloader.config if reloader is not None else config,
                    host=host,
                    port=port,
                    worker_id=worker_id,
                    workers=workers,
                    run_dir=run_dir,
                    source=source,
                    digest=reloader.digest if reloader is not None else "",
                )
            except BaseException:
                log.exception("worker %d crashed", worker_id)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = worker_id

    def spawn_admin() -> None:
        nonlocal admin_pid
        assert admin_socket is not None
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # nothing to reopen there
            _die_with_parent(parent)
            code = 1
            try:
                # Imported in the admin process only: the workers never load aiohttp's
                # server (or prometheus-client) for it.
                from propylon.admin.process import run_admin

                code = run_admin(
                    reloader.config if reloader is not None else config,
                    admin_socket,
                    run_dir,
                    workers,
                    source,
                )
            except BaseException:
                log.exception("the admin listener crashed")
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        admin_pid = pid

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    signal.signal(signal.SIGUSR1, on_user1)
    for worker_id in range(workers):
        spawn(worker_id)
    if admin_socket is not None:
        spawn_admin()
    failures = 0
    try:
        while children or admin_pid is not None:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            code = os.waitstatus_to_exitcode(status)
            if pid == admin_pid:
                admin_pid = None
                if stopping:
                    continue
                failures += 1
                log.error("the admin listener exited with %d; restarting", code)
                time.sleep(RESTART_BACKOFF)
                if not stopping:
                    spawn_admin()
                continue
            worker_id = children.pop(pid, -1)
            _stop_admin_when_alone()
            if worker_id < 0 or stopping:
                continue
            failures += 1
            log.error("worker %d exited with %d; restarting", worker_id, code)
            if failures > 10 * workers:
                log.error("workers keep failing; giving up")
                on_signal(signal.SIGTERM, None)
                continue
            time.sleep(RESTART_BACKOFF)
            if not stopping:
                spawn(worker_id)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if stopping else 1
