"""Ocelot's file schema as pydantic models, read the way .NET's configuration binder reads it.

The models see keys already made canonical by ``ocelot_keys.normalise``; unknown and
unimplemented keys never reach them. Values are lenient like the binder (``"8080"`` is a
port) but a boolean is not a number.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _not_bool(value: Any) -> Any:
    # .NET's binder reads "8080" as a number (pydantic's lax mode agrees) but not true.
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, got {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HostAndPortModel(_Model):
    Host: str
    Port: Int


class AuthenticationModel(_Model):
    AuthenticationProviderKey: str | None = None
    AuthenticationProviderKeys: list[str] = []
    AllowedScopes: list[str] = []


class QoSModel(_Model):
    """``QoSOptions`` as written: both generations of names (Ocelot 25 reads both; the old
    one wins when both are given)."""

    ExceptionsAllowedBeforeBreaking: Int | None = None
    MinimumThroughput: Int | None = None
    DurationOfBreak: Int | None = None
    BreakDuration: Int | None = None
    TimeoutValue: Int | None = None
    Timeout: Int | None = None
    FailureRatio: Float | None = None
    SamplingDuration: Int | None = None


class GlobalQoSModel(QoSModel):
    RouteKeys: list[str] | None = None


class LoadBalancerModel(_Model):
    Type: str | None = None
    Key: str | None = None
    Expiry: Int | None = None


class GlobalLoadBalancerModel(LoadBalancerModel):
    RouteKeys: list[str] | None = None


class SecurityOptionsModel(_Model):
    IPAllowedList: list[str] = []
    IPBlockedList: list[str] = []
    ExcludeAllowedFromBlocked: bool = False


class CorsModel(_Model):
    """propylon's extension: Ocelot has no CORS keys (ASP.NET's middleware does it there),
    and its binder ignores this object, so a file with it still runs under Ocelot."""

    AllowedOrigins: list[str] = []
    AllowedMethods: list[str] | None = None
    AllowedHeaders: list[str] | None = None
    ExposedHeaders: list[str] = []
    AllowCredentials: bool = False
    MaxAge: Int | None = None


class RateLimitModel(_Model):
    """``RateLimitOptions`` as written (Ocelot's ``FileRateLimitByHeaderRule``): every key
    optional, so that merging with the global object can tell "absent" from "given"."""

    ClientIdHeader: str | None = None
    ClientWhitelist: list[str] | None = None
    EnableRateLimiting: bool | None = None
    EnableHeaders: bool | None = None
    DisableRateLimitHeaders: bool | None = None
    Limit: Int | None = None
    Period: str | None = None
    PeriodTimespan: Float | None = None
    Wait: str | None = None
    StatusCode: Int | None = None
    HttpStatusCode: Int | None = None
    QuotaMessage: str | None = None
    QuotaExceededMessage: str | None = None
    KeyPrefix: str | None = None
    RateLimitCounterPrefix: str | None = None


class GlobalRateLimitModel(RateLimitModel):
    RouteKeys: list[str] | None = None


class OcelotRoute(_Model):
    UpstreamPathTemplate: str
    UpstreamHttpMethod: list[str] = []
    DownstreamPathTemplate: str
    DownstreamScheme: str | None = None
    DownstreamHostAndPorts: list[HostAndPortModel] = []
    AuthenticationOptions: AuthenticationModel | None = None
    RouteClaimsRequirement: dict[str, str] = {}
    AddHeadersToRequest: dict[str, str] = {}
    Priority: Int | None = None
    RouteIsCaseSensitive: bool = False
    UpstreamHost: str | None = None
    Timeout: Int | None = None
    Key: str | None = None
    RequestIdKey: str | None = None
    QoSOptions: QoSModel | None = None
    LoadBalancerOptions: LoadBalancerModel | None = None
    LoadBalancer: str | None = None
    SecurityOptions: SecurityOptionsModel | None = None
    Cors: CorsModel | None = None
    RateLimitOptions: RateLimitModel | None = None


class GlobalConfiguration(_Model):
    BaseUrl: str | None = None
    RequestIdKey: str | None = None
    DownstreamScheme: str | None = None
    Timeout: Int | None = None
    LoadBalancerOptions: GlobalLoadBalancerModel | None = None
    QoSOptions: GlobalQoSModel | None = None
    SecurityOptions: SecurityOptionsModel | None = None
    Cors: CorsModel | None = None
    RateLimitOptions: GlobalRateLimitModel | None = None
    Dns: dict[str, Any] | None = None
    """propylon's extension (DNS discovery, ``config/dns.py``): Ocelot's binder ignores it."""
