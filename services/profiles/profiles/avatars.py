"""Avatar files on disk: named by the service, written whole, then swapped in."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from profiles.image_types import extension_for


class AvatarStore:
    def __init__(self, media_dir: Path) -> None:
        self.media_dir = media_dir

    def ensure_directory(self) -> None:
        self.media_dir.mkdir(parents=True, exist_ok=True)

    def partial_path(self) -> Path:
        # Dot-prefixed: an interrupted upload is recognisable and never served.
        return self.media_dir / f".upload-{secrets.token_hex(12)}"

    def keep(self, partial: Path, profile_id: int, content_type: str) -> str:
        name = f"{profile_id}-{secrets.token_hex(8)}.{extension_for(content_type)}"
        partial.replace(self.media_dir / name)
        return name

    def path_of(self, name: str) -> Path:
        # Names come from `keep`, but check anyway: a path must never leave the directory.
        path = (self.media_dir / name).resolve()
        if path.parent != self.media_dir.resolve():
            raise ValueError(f"avatar name escapes the media directory: {name!r}")
        return path

    def discard(self, name_or_path: str | Path | None) -> None:
        if name_or_path is None:
            return
        path = name_or_path if isinstance(name_or_path, Path) else self.path_of(name_or_path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
