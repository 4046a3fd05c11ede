"""`python -m identity --host 127.0.0.1 --port 8001 [--migrate]`; settings from the environment."""

from __future__ import annotations

from collections.abc import Sequence

from servicekit.serving import run_service

from identity.app import create_app
from identity.settings import IdentitySettings


def main(argv: Sequence[str] | None = None) -> None:
    run_service("identity", 8001, IdentitySettings.from_env, create_app, argv)


if __name__ == "__main__":
    main()
