"""``GET /config``: the effective config as JSON, with every secret replaced.

Walks the frozen config model generically, so a field added later is shown without this
module changing; what must never be shown is decided by field name (HMAC secrets, private
key material, the admin token), by the shape of a value (a URL's password), and, for plugin
settings whose meaning only the plugin knows, by key names that usually hold secrets.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"
SECRET_FIELDS = frozenset({"secret", "key_pem", "token"})
"""Model fields that hold a secret itself (``JwtProviderSpec.secret``,
``AssertionSettings.key_pem``, ``AdminSpec.token``); file *names* are shown."""
_SECRET_WORDS = re.compile(r"secret|passw|token|credential|api_?key|private", re.IGNORECASE)


def config_view(config: object) -> Any:
    return _view(config, plugin_settings=False)


def _view(value: Any, *, plugin_settings: bool) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for item in dataclasses.fields(value):
            inner = getattr(value, item.name)
            if item.name in SECRET_FIELDS and inner is not None:
                out[item.name] = REDACTED
            else:
                out[item.name] = _view(inner, plugin_settings=item.name == "settings")
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED
            if plugin_settings and _SECRET_WORDS.search(str(k))
            else _view(v, plugin_settings=plugin_settings)
            for k, v in value.items()
        }
    if isinstance(value, frozenset | set):
        return sorted(_view(v, plugin_settings=plugin_settings) for v in value)
    if isinstance(value, tuple | list):
        return [_view(v, plugin_settings=plugin_settings) for v in value]
    if isinstance(value, bytes):
        # Public key PEMs are the only bytes left; shown as text.
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return redact_url(value)
    return value


def redact_url(text: str) -> str:
    """A URL with a password (``redis://:pw@host``, ``https://u:pw@host``) loses it."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
        if parts.password is None and parts.username is None:
            return text
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}:" if parts.username and parts.password is not None else ""
        netloc = f"{user}{REDACTED}@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return REDACTED
