"""Where a running gateway's config comes from: the file and the flags ``run`` applied to it.

Start-up and every reload read it the same way (``ConfigSource.load``), so a reload
validates exactly what ``propylon check`` and ``propylon run`` would: the file through
``load_config``, then the ``--tls-*``, ``--admin`` and ``--otlp-*`` flags. ``load`` reads the
file's bytes once and returns them with the config, so what the workers are handed
(engine/reload.py) is the text that was validated, never a file that changed in between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from propylon.config.admin import with_admin
from propylon.config.document import parse_text
from propylon.config.loader import compile_document
from propylon.config.model import ConfigError, ConfigFormat, GatewayConfig, Problem
from propylon.config.tls import with_tls_flags
from propylon.config.tracing import with_tracing_flags


@dataclass(frozen=True, slots=True)
class Loaded:
    """A validated config and the exact text it was compiled from."""

    config: GatewayConfig
    text: str
    digest: str
    """sha256 of ``text``: the version every process compares."""


@dataclass(frozen=True, slots=True)
class ConfigSource:
    path: str
    fmt: ConfigFormat | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_port: int | None = None
    tls_only: bool = False
    admin: str | None = None
    """``--admin HOST:PORT``; None: only the file's ``admin`` block, if any."""
    otlp_endpoint: str | None = None
    otlp_sample_ratio: str | None = None
    """``--otlp-endpoint`` / ``--otlp-sample-ratio`` as given (None: the file's)."""

    def load(self, env: Mapping[str, str]) -> Loaded:
        """Read and validate the file now; ConfigError with every problem found."""
        try:
            raw = Path(self.path).read_bytes()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError([Problem(self.path, "", f"cannot read the file: {reason}")]) from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                [Problem(self.path, "", f"not UTF-8 text (byte {exc.start} is invalid)")]
            ) from None
        return self.compile(text, env)

    def compile(self, text: str, env: Mapping[str, str]) -> Loaded:
        """The config ``text`` (this source's file, as read earlier) with the flags applied."""
        config = compile_document(parse_text(self.path, text), env, self.fmt)
        config = with_tls_flags(
            config, cert=self.tls_cert, key=self.tls_key, port=self.tls_port, only=self.tls_only
        )
        config = with_admin(config, self.admin, env)
        config = with_tracing_flags(
            config, endpoint=self.otlp_endpoint, sample_ratio=self.otlp_sample_ratio
        )
        return Loaded(config, text, hashlib.sha256(text.encode()).hexdigest())
