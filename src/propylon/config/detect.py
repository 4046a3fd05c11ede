"""Which of the three formats a parsed file is written in, judged by its content.

1. A top-level list is the first seed's route list.
2. A mapping with a ``propylon`` key is the native format.
3. A mapping with ``ReRoutes`` or ``GlobalConfiguration`` (any letter case) is Ocelot.
4. A mapping with ``routes`` (any case) is Ocelot when a route item uses an Ocelot property
   name (``UpstreamPathTemplate``, ``DownstreamHostAndPorts``...), native when an item uses a
   native one (``path``, ``downstream``...); if the items say nothing, ``Routes`` spelt with a
   capital R means Ocelot.
5. Anything else is read as native (whose reader then says what is missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from propylon.config.model import ConfigFormat
from propylon.config.ocelot_keys import ROUTE

_NATIVE_ROUTE_KEYS = frozenset(
    {"path", "path_regex", "downstream", "methods", "auth", "upstream_host", "case_sensitive"}
)


def detect_format(data: object) -> ConfigFormat:
    if isinstance(data, list):
        return ConfigFormat.SEED
    if not isinstance(data, Mapping):
        return ConfigFormat.NATIVE
    keys = {str(k): v for k, v in data.items()}
    if "propylon" in keys:
        return ConfigFormat.NATIVE
    lowered = {k.lower(): k for k in keys}
    if "reroutes" in lowered or "globalconfiguration" in lowered:
        return ConfigFormat.OCELOT
    if "routes" in lowered:
        written = lowered["routes"]
        verdict = _judge_routes(keys[written])
        if verdict is not None:
            return verdict
        return ConfigFormat.OCELOT if written == "Routes" else ConfigFormat.NATIVE
    return ConfigFormat.NATIVE


def _judge_routes(routes: Any) -> ConfigFormat | None:
    if not isinstance(routes, list):
        return None
    for item in routes:
        if not isinstance(item, Mapping):
            continue
        for key in item:
            name = str(key)
            if name in _NATIVE_ROUTE_KEYS:
                return ConfigFormat.NATIVE
            if ROUTE.canonical(name) is not None and name.lower() not in {
                "key",
                "priority",
                "timeout",
            }:
                return ConfigFormat.OCELOT
    return None
