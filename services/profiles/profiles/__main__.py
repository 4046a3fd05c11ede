"""`python -m profiles --host 127.0.0.1 --port 8002 [--migrate]`; settings from the environment."""

from __future__ import annotations

from collections.abc import Sequence

from servicekit.serving import run_service

from profiles.app import create_app
from profiles.settings import ProfilesSettings


def main(argv: Sequence[str] | None = None) -> None:
    run_service("profiles", 8002, ProfilesSettings.from_env, create_app, argv)


if __name__ == "__main__":
    main()
