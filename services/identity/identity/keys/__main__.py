"""`python -m identity.keys rotate --dir DIR` adds a signing key; `list` shows the keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from identity.keys import KeyDirectory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m identity.keys")
    parser.add_argument("action", choices=["rotate", "list"])
    parser.add_argument("--dir", required=True, type=Path, help="the IDENTITY_KEYS_DIR")
    args = parser.parse_args(argv)
    directory = KeyDirectory(args.dir)
    if args.action == "rotate":
        key = directory.add_key()
        print(f"added signing key {key.kid}; it signs new tokens from now on")
        return 0
    try:
        ring = directory.ring()
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 1
    for key in ring.keys:
        marker = "signing" if key is ring.signer else "verify-only"
        print(f"{key.kid} {key.created_ns} {marker}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
