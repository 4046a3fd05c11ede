"""The limits a client connection enforces, read once from the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from propylon.config.model import Limits


class ClientLimits:
    """The limits a client connection checks, copied once from the config's ``Limits``:
    read for every header of every request, so they live where compiled code reads them
    directly rather than through a config object's attribute lookup."""

    __slots__ = (
        "body_rate_grace",
        "body_timeout",
        "header_timeout",
        "keepalive_timeout",
        "max_body_bytes",
        "max_header_bytes",
        "max_headers",
        "max_url_bytes",
        "min_body_rate",
    )

    def __init__(self, limits: Limits) -> None:
        self.max_body_bytes: int = limits.max_body_bytes
        self.max_header_bytes: int = limits.max_header_bytes
        self.max_headers: int = limits.max_headers
        self.max_url_bytes: int = limits.max_url_bytes
        self.header_timeout: float = limits.header_timeout
        self.keepalive_timeout: float = limits.keepalive_timeout
        self.body_timeout: float = limits.body_timeout
        self.min_body_rate: float = float(limits.min_body_rate)
        self.body_rate_grace: float = limits.body_rate_grace
