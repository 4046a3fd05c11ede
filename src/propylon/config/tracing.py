"""Tracing settings: the native ``tracing`` block and ``--otlp-endpoint``/``--otlp-sample-ratio``.

W3C trace context is propagated whatever these say; they decide whether spans are exported
(an endpoint) and which new traces are sampled. A flag wins over the file, key by key.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, ValidationError

from propylon.config.diagnostics import Diagnostics
from propylon.config.model import ConfigError, GatewayConfig, Problem, TracingSpec
from propylon.config.native_settings import Strict

ENDPOINT_FLAG = "--otlp-endpoint"
RATIO_FLAG = "--otlp-sample-ratio"
TRACES_PATH = "/v1/traces"
"""What OTLP/HTTP collectors serve traces on; appended to an endpoint given without a path."""

_DEFAULTS = TracingSpec()


class _Tracing(Strict):
    otlp_endpoint: str | None = None
    sample_ratio: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = (
        _DEFAULTS.sample_ratio
    )
    service_name: Annotated[str, Field(min_length=1)] = _DEFAULTS.service_name


def traces_url(text: str) -> str:
    """An OTLP/HTTP endpoint -> the URL spans are POSTed to; ValueError saying why not.
    ``http://collector:4318`` means ``http://collector:4318/v1/traces``; a URL with a path
    is used as it is."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"not a URL: {text!r}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    if not parts.hostname:
        raise ValueError(f"the URL names no host: {text!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not supported (they would be logged)")
    del port  # read only to check it
    if parts.path in ("", "/"):
        return parts._replace(path=TRACES_PATH).geturl()
    return parts.geturl()


def sdk_problem(config: GatewayConfig) -> Problem | None:
    """Why spans cannot be exported here (the ``[otlp]`` extra is not installed), or None.
    Found without importing the SDK, which only workers that export load."""
    if config.tracing.otlp_endpoint is None:
        return None
    missing = [name for name in _EXPORT_MODULES if not _importable(name)]
    if not missing:
        return None
    return Problem(
        config.source,
        "tracing.otlp_endpoint",
        f"exporting spans needs {', '.join(missing)}: pip install 'propylon[otlp]'",
    )


_EXPORT_MODULES = ("opentelemetry.sdk", "opentelemetry.proto", "urllib3")
"""What ``tracing/export.py`` imports from the ``[otlp]`` extra."""


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def read_tracing(raw: object, diag: Diagnostics) -> TracingSpec | None:
    if raw is None:
        return None
    try:
        given = _Tracing.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, ("tracing",), _Tracing)
        return None
    endpoint = given.otlp_endpoint
    if endpoint is not None:
        try:
            endpoint = traces_url(endpoint)
        except ValueError as exc:
            diag.error(("tracing", "otlp_endpoint"), str(exc))
            return None
    return TracingSpec(
        otlp_endpoint=endpoint, sample_ratio=given.sample_ratio, service_name=given.service_name
    )


def with_tracing_flags(
    config: GatewayConfig, *, endpoint: str | None, sample_ratio: str | None
) -> GatewayConfig:
    """``config`` with ``--otlp-endpoint`` / ``--otlp-sample-ratio`` applied; ConfigError
    naming the flag when a value is bad."""
    if endpoint is None and sample_ratio is None:
        return config
    spec = config.tracing
    if endpoint is not None:
        try:
            spec = replace(spec, otlp_endpoint=traces_url(endpoint))
        except ValueError as exc:
            raise ConfigError([Problem(ENDPOINT_FLAG, "", str(exc))]) from None
    if sample_ratio is not None:
        try:
            ratio = float(sample_ratio)
        except ValueError:
            ratio = math.nan
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(
                [Problem(RATIO_FLAG, "", f"expected a number from 0 to 1, got {sample_ratio!r}")]
            )
        spec = replace(spec, sample_ratio=ratio)
    return replace(config, tracing=spec)
