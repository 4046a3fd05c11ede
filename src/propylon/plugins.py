"""The public API for stages users write in Python: small, documented, stable.

A plugin is a class deriving from ``Plugin``, named in the native config by import path::

    plugins:
      api_keys:
        use: "mycompany.gateway:ApiKeyCheck"   # module:Class
        settings: {keys_file: keys.txt}          # passed to the constructor, as read
    routes:
      - path: /reports/{id}
        plugins: [api_keys]                      # in this order, after authentication

One instance per definition and worker is built at start-up, so settings are read once.
For each request of a route that lists it, ``on_request`` gets a ``Call``: a read-only view
of the request and of the verified caller, and the ways to act on the exchange. It may be a
plain method (cheapest) or a coroutine (``async def``: the request waits for it, the
worker serves others meanwhile). A plugin that raises makes that request a 500 envelope and
a log line; the worker carries on. One whose step holds the event loop longer than
``Plugin.slow_step`` seconds is named in a warning, because every other request of that
worker waited for it. See docs/plugins.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

from propylon.config.values import FORBIDDEN_IDENTITY_HEADERS, header_name

__all__ = ["Call", "Caller", "Plugin", "PluginRefusal", "RequestView"]


class RequestView:
    """The request as the route received it (read-only)."""

    __slots__ = ("_headers", "client_address", "method", "route", "target")

    def __init__(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        client_address: str,
        route: str,
    ) -> None:
        self.method = method
        self.target = target
        """The downstream target: path and query as the upstream will receive them."""
        self._headers = headers
        self.client_address = client_address
        """The client's address: the peer's, or from ``X-Forwarded-For`` through trusted
        proxies only (never what an untrusted client claims)."""
        self.route = route
        """The route's label (its name, or methods and template)."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any letter case), or None. Headers the
        gateway strips or handles itself (identity, hop-by-hop, framing) are not here."""
        return self._headers.get(name.lower())

    @property
    def headers(self) -> Mapping[str, str]:
        """Lower-cased names to first values."""
        return self._headers


class Caller:
    """The verified caller (read-only); ``Call.caller`` is None on anonymous requests."""

    __slots__ = ("claims", "provider", "scopes", "subject")

    def __init__(
        self, subject: str, claims: Mapping[str, Any], scopes: frozenset[str], provider: str
    ) -> None:
        self.subject = subject
        self.claims = claims
        self.scopes = scopes
        self.provider = provider


class PluginRefusal(Exception):
    """Raised by ``Call.refuse`` to end ``on_request`` at once; the adapter answers."""


class Call:
    """One request, as a plugin sees it and acts on it."""

    __slots__ = ("_refusal", "_response", "_upstream", "caller", "request")

    def __init__(self, request: RequestView, caller: Caller | None) -> None:
        self.request = request
        self.caller = caller
        self._upstream: list[tuple[str, str]] = []
        self._response: list[tuple[str, str]] = []
        self._refusal: tuple[int, str] | None = None

    def add_upstream_header(self, name: str, value: str) -> None:
        """Send ``name: value`` to the upstream with this request."""
        self._upstream.append(_checked(name, value))

    def add_response_header(self, name: str, value: str) -> None:
        """Send ``name: value`` back to the client, on whatever answer it gets."""
        self._response.append(_checked(name, value))

    def refuse(self, message: str, status: int = 403) -> NoReturn:
        """Answer with the JSON envelope (``code`` 429 ``PluginRefused``, ``message``) and
        HTTP ``status`` (400-599); nothing goes upstream. Raises ``PluginRefusal``, so
        nothing after it in ``on_request`` runs."""
        if not 400 <= status <= 599:
            raise ValueError(f"a refusal's status is 400-599, got {status}")
        self._refusal = (status, message)
        raise PluginRefusal


class Plugin:
    """Base class of user stages. Subclasses override ``on_request`` (plain or async)."""

    slow_step = 0.05
    """Seconds a single synchronous step may hold the event loop before a warning."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        """Read and check ``settings`` here: a ValueError or TypeError is reported as a
        config error at the plugin's ``settings`` key (by ``propylon check`` too)."""
        self.settings = settings

    def on_request(self, call: Call) -> Any:
        """Inspect ``call.request`` and ``call.caller``; add headers or ``call.refuse``."""
        return None

    async def start(self) -> None:
        """Once per worker, before it serves (open clients, load files)."""

    async def close(self) -> None:
        """Once per worker, when it stops."""


_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _checked(name: str, value: str) -> tuple[str, str]:
    # A plugin must not be able to split a header line, smuggle framing, or set a header
    # the gateway owns (identity, request id, forwarding facts).
    header_name(name)
    if name.lower() in FORBIDDEN_IDENTITY_HEADERS:
        raise ValueError(f"{name!r} is a hop-by-hop, framing or gateway-owned header")
    if _UNSAFE_VALUE.search(value) or value != value.strip():
        raise ValueError(f"header {name} has a value that cannot be sent safely")
    return name, value
