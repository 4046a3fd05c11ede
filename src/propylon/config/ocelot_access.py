"""Ocelot's ``SecurityOptions`` and propylon's ``Cors`` extension, route and global.

``SecurityOptions`` follow Ocelot's ``SecurityOptionsCreator``: a route whose
``IPAllowedList`` and ``IPBlockedList`` are both empty takes the global options whole;
otherwise its own replace them whole. Ocelot drops an entry its parser cannot read without a
word (so an allow list of typos becomes empty, which admits everyone); here it is an error.
``Cors`` follows the same replacement rule: a route's own object replaces the global one.
"""

from __future__ import annotations

from propylon.config.cors import CorsInput, cors_policy
from propylon.config.diagnostics import Diagnostics, Loc
from propylon.config.ip_rules import address_list
from propylon.config.model import CorsPolicy, IpRules
from propylon.config.ocelot_models import CorsModel, SecurityOptionsModel

_CORS_KEYS = {
    "origins": "AllowedOrigins",
    "methods": "AllowedMethods",
    "headers": "AllowedHeaders",
    "expose_headers": "ExposedHeaders",
    "credentials": "AllowCredentials",
    "max_age": "MaxAge",
}


def security_options(
    options: SecurityOptionsModel | None, loc: Loc, diag: Diagnostics
) -> IpRules | None:
    """The rules ``options`` state (None: absent, or no address listed)."""
    if options is None:
        return None
    at = (*loc, "SecurityOptions")
    allowed = address_list(
        options.IPAllowedList, (*at, "IPAllowedList"), diag, host_bits_are_errors=False
    )
    blocked = address_list(
        options.IPBlockedList, (*at, "IPBlockedList"), diag, host_bits_are_errors=False
    )
    rules = IpRules(allowed, blocked, options.ExcludeAllowedFromBlocked)
    return rules if rules else None


def cors(options: CorsModel | None, loc: Loc, diag: Diagnostics) -> CorsPolicy | None:
    if options is None:
        return None
    at = (*loc, "Cors")

    def where(field: str, index: int | None) -> Loc:
        key = (*at, _CORS_KEYS[field])
        return key if index is None else (*key, index)

    return cors_policy(
        CorsInput(
            origins=options.AllowedOrigins,
            methods=options.AllowedMethods,
            headers=options.AllowedHeaders,
            expose_headers=options.ExposedHeaders,
            credentials=options.AllowCredentials,
            max_age=options.MaxAge,
        ),
        lambda field, index, message: diag.error(where(field, index), message),
        lambda field, index, message: diag.warning(where(field, index), message),
    )
