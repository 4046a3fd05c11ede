"""The typed config model and its readers."""

from propylon.config.model import (
    AuthRequirement,
    ConfigError,
    ConfigFormat,
    DownstreamHost,
    GatewayConfig,
    JwtProviderSpec,
    Limits,
    Problem,
    RouteSpec,
    StatsAccess,
)

__all__ = [
    "AuthRequirement",
    "ConfigError",
    "ConfigFormat",
    "DownstreamHost",
    "GatewayConfig",
    "JwtProviderSpec",
    "Limits",
    "Problem",
    "RouteSpec",
    "StatsAccess",
]
