"""``propylon run --watch-config``: reload whenever the config file's content changes.

A small process of its own (forked before anything else, so it holds no socket of the
gateway's) watches the file's directory with ``watchfiles`` (the optional extra
``propylon[watch]``): whatever way the file is replaced (written in place, renamed over by
an editor, a Kubernetes ConfigMap's symlink swap), a change in the directory is noticed, and
when the file's content is not what it was, the gateway gets ``SIGHUP``: exactly the reload
an operator would start, validated first, with nothing applied when it fails. Changes that
arrive together (an editor's temporary file, then the rename) make one reload; another file
of the directory changing makes none.

Its own process rather than a thread: the supervisor forks replacement workers, and stays
single-threaded so that forking is safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("propylon.reload")

EXTRA = "pip install 'propylon[watch]'"


def available() -> bool:
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return False
    return True


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None  # between an unlink and a rename: the next change will tell


def start(path: str, target: int, in_child: Callable[[], None]) -> int:
    """Fork the watcher; returns its pid. ``in_child`` runs first in the new process (the
    runner makes it exit with its parent)."""
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the gateway's to handle
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        in_child()
        watch(Path(path).absolute(), target)
        code = 0
    except BaseException:
        log.exception("the config watcher failed; reload with SIGHUP instead")
    finally:
        sys.stderr.flush()
        os._exit(code)


def watch(path: Path, target: int) -> None:
    import watchfiles

    last = _digest(path)
    log.info("watching %s: a change reloads the config", path)
    # Changes within ``step`` ms of each other (up to ``debounce``) come as one batch.
    for _batch in watchfiles.watch(path.parent, debounce=1600, step=100, recursive=False):
        now = _digest(path)
        if now is None or now == last:
            continue
        last = now
        log.info("%s changed: reloading", path)
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGHUP)
