"""The TLS listener's settings: the native ``tls`` block and the ``--tls-*`` flags of
``propylon run`` / ``check``, which name the same four things and go through the same checks
(the files exist, parse, and the key is the certificate's).

A flag overrides its key of the file; what a file names is relative to the file's directory,
what a flag names to the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError

from propylon.config.diagnostics import Diagnostics, render
from propylon.config.model import DEFAULT_TLS_PORT, ConfigError, GatewayConfig, Problem, TlsSpec
from propylon.config.native_settings import Strict
from propylon.http.tls import check_files

CERT_FLAG = "--tls-cert"
KEY_FLAG = "--tls-key"


class _Tls(Strict):
    cert_file: str
    key_file: str
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_TLS_PORT
    only: bool = False


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a file's name was given: the config file and key path, or a flag."""

    source: str
    path: str


def read_tls(raw: object, diag: Diagnostics, base_dir: Path) -> TlsSpec | None:
    if raw is None:
        return None
    try:
        given = _Tls.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, ("tls",), _Tls)
        return None
    spec = TlsSpec(
        cert_file=str(base_dir / given.cert_file),
        key_file=str(base_dir / given.key_file),
        port=given.port,
        only=given.only,
    )
    cert_at = Origin(diag.file, render(("tls", "cert_file")))
    key_at = Origin(diag.file, render(("tls", "key_file")))
    for problem in file_problems(spec, cert_at, key_at):
        where = ("tls", "cert_file" if problem.path == cert_at.path else "key_file")
        if problem.severity == "error":
            diag.error(where, problem.message)
        else:
            diag.warning(where, problem.message)
    return spec


def file_problems(spec: TlsSpec, cert_at: Origin, key_at: Origin) -> list[Problem]:
    """Every problem with the two files, each naming the file and where it was given."""
    errors, warnings = check_files(spec.cert_file, spec.key_file)
    out: list[Problem] = []
    for severity, found in (("error", errors), ("warning", warnings)):
        for p in found:
            at = cert_at if p.which == "cert" else key_at
            out.append(Problem(at.source, at.path, f"{p.file}: {p.message}", severity))
    return out


def with_tls_flags(
    config: GatewayConfig,
    *,
    cert: str | None,
    key: str | None,
    port: int | None,
    only: bool,
) -> GatewayConfig:
    """``config`` with the ``--tls-*`` flags applied; ConfigError names every problem."""
    if cert is None and key is None and port is None and not only:
        return config
    base = config.tls
    cert_file = os.path.abspath(cert) if cert is not None else base and base.cert_file
    key_file = os.path.abspath(key) if key is not None else base and base.key_file
    if not cert_file or not key_file:
        given = [
            flag
            for flag, value in (
                (CERT_FLAG, cert),
                (KEY_FLAG, key),
                ("--tls-port", port),
                ("--tls-only", only or None),
            )
            if value is not None
        ]
        missing = [flag for flag, f in ((CERT_FLAG, cert_file), (KEY_FLAG, key_file)) if not f]
        raise ConfigError(
            [
                Problem(
                    given[0],
                    "",
                    f"needs {' and '.join(missing)} too (or a tls block in {config.source})",
                )
            ]
        )
    spec = TlsSpec(
        cert_file=cert_file,
        key_file=key_file,
        port=port if port is not None else (base.port if base else DEFAULT_TLS_PORT),
        only=only or (base.only if base else False),
    )
    if cert is not None or key is not None:
        # A flag's problem is reported as the flag's; one about a file the config named,
        # with that file's key path.
        cert_at = (
            Origin(CERT_FLAG, "")
            if cert is not None
            else Origin(config.source, render(("tls", "cert_file")))
        )
        key_at = (
            Origin(KEY_FLAG, "")
            if key is not None
            else Origin(config.source, render(("tls", "key_file")))
        )
        problems = file_problems(spec, cert_at, key_at)
        if any(p.severity == "error" for p in problems):
            raise ConfigError(problems)
        config = replace(config, warnings=(*config.warnings, *problems))
    return replace(config, tls=spec)
