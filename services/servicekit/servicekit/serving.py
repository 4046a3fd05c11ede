"""Running a service: the CLI entry both services share, and an in-process server for tests.

`ServiceThread` binds 127.0.0.1 (port 0 by default, so the kernel picks a free port) before
starting uvicorn, so the port is known the moment the context is entered.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar

import uvicorn
from fastapi import FastAPI

from servicekit.environment import SettingError


class ServiceThread:
    """A uvicorn server for `app` in a background thread (a context manager)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        # proxy_headers off, as in `serve`: the services decide themselves whose
        # X-Forwarded-For to believe (servicekit.clients), uvicorn must not rewrite the peer.
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="h11",
            lifespan="on",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("service failed to start (see its log)")
            if time.monotonic() > deadline:
                raise TimeoutError("service did not start in time")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ServiceThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def parse_listen_args(
    prog: str, default_port: int, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog)
    # Loopback by default: the services are reached only through the gateway.
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument(
        "--migrate", action="store_true", help="apply pending database migrations at start-up"
    )
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def serve(app: FastAPI, host: str, port: int, log_level: str = "info") -> None:
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False)


class ServiceSettings(Protocol):
    """What `run_service` needs of a service's settings: a dataclass with this flag."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def migrate_on_start(self) -> bool: ...


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def run_service(
    name: str,
    default_port: int,
    settings_from_env: Callable[[], SettingsT],
    create_app: Callable[[SettingsT], FastAPI],
    argv: Sequence[str] | None = None,
) -> None:
    """`python -m <name> --host H --port P [--migrate] [--log-level L]`: settings from the
    environment, `--migrate` forcing migrations at start-up."""
    args = parse_listen_args(f"python -m {name}", default_port, argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        settings = settings_from_env()
        if args.migrate:
            settings = dataclasses.replace(settings, migrate_on_start=True)
        app = create_app(settings)
    except SettingError as exc:
        # One line naming the variable; a traceback would only bury it.
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    serve(app, args.host, args.port, args.log_level)
