"""The operations listener's settings: the native ``admin`` block and ``--admin HOST:PORT``.

Both name one address. The listener is off unless one of them asks for it (two gateways on
one host must never collide on a default port), and the flag wins over the file. Beyond
loopback it needs a token: ``run`` reads it from the environment (``PROPYLON_ADMIN_TOKEN``,
or the variable ``admin.token_env`` names) and refuses to start without one, because a
listener that shows the config and the traffic to anyone who can reach it is a leak.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import replace

from pydantic import ValidationError

from propylon.config.diagnostics import Diagnostics
from propylon.config.model import (
    DEFAULT_ADMIN_TOKEN_ENV,
    AdminSpec,
    ConfigError,
    GatewayConfig,
    Problem,
)
from propylon.config.native_settings import Strict

ADMIN_FLAG = "--admin"
CONVENTIONAL = "127.0.0.1:9901"
MIN_TOKEN_BYTES = 16
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _Admin(Strict):
    listen: str
    token_env: str = DEFAULT_ADMIN_TOKEN_ENV


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); ValueError saying why not."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT such as {CONVENTIONAL}, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, as [::1]:9901, got {text!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be 0-65535, got {port_text!r}")
    if not host or any(c.isspace() or c in "/[]" for c in host):
        raise ValueError(f"not a host name or address: {host!r}")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def read_admin(raw: object, diag: Diagnostics) -> AdminSpec | None:
    if raw is None:
        return None
    try:
        given = _Admin.model_validate(raw)
    except ValidationError as exc:
        diag.validation(exc, ("admin",), _Admin)
        return None
    if not _ENV_NAME.match(given.token_env):
        diag.error(("admin", "token_env"), f"not an environment variable name: {given.token_env!r}")
        return None
    try:
        host, port = parse_listen(given.listen)
    except ValueError as exc:
        diag.error(("admin", "listen"), str(exc))
        return None
    return AdminSpec(host=host, port=port, token_env=given.token_env)


def with_admin(config: GatewayConfig, flag: str | None, env: Mapping[str, str]) -> GatewayConfig:
    """The config with ``--admin`` applied and the token read; ConfigError naming the flag
    or key when the address is bad or a listener beyond loopback has no token."""
    spec = config.admin
    where = Problem(config.source, "admin.listen", "")
    if flag is not None:
        try:
            host, port = parse_listen(flag)
        except ValueError as exc:
            raise ConfigError([Problem(ADMIN_FLAG, "", str(exc))]) from None
        token_env = spec.token_env if spec is not None else DEFAULT_ADMIN_TOKEN_ENV
        spec = AdminSpec(host=host, port=port, token_env=token_env)
        where = Problem(ADMIN_FLAG, "", "")
    if spec is None:
        return config
    token = env.get(spec.token_env, "")
    if token and len(token.encode()) < MIN_TOKEN_BYTES:
        raise ConfigError(
            [
                Problem(
                    spec.token_env,
                    "",
                    f"the admin token must be at least {MIN_TOKEN_BYTES} bytes "
                    "(e.g. openssl rand -hex 32)",
                )
            ]
        )
    if not token and not is_loopback(spec.host):
        raise ConfigError(
            [
                replace(
                    where,
                    message=(
                        f"the admin listener on {spec.host}:{spec.port} is beyond loopback and "
                        f"needs a token: set {spec.token_env} (e.g. to $(openssl rand -hex 32)), "
                        "or listen on 127.0.0.1"
                    ),
                )
            ]
        )
    spec = replace(spec, token=token.encode() if token else None)
    return replace(config, admin=spec)
