"""`python -m identity --host 127.0.0.1 --port 8001 [--migrate]`; settings from the environment."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from servicekit.serving import parse_listen_args, serve

from identity.app import create_app
from identity.settings import IdentitySettings


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_listen_args("python -m identity", 8001, argv)
    logging.basicConfig(level=args.log_level.upper())
    settings = IdentitySettings.from_env()
    if args.migrate:
        settings = dataclasses.replace(settings, migrate_on_start=True)
    serve(create_app(settings), args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
