"""Who may read ``GET /stats`` by address: loopback only unless the config allows more.

The address judged is the client's: the peer's, or, behind a trusted proxy (``trusted_proxies``),
the one that proxy forwarded for (the engine resolves it). Otherwise any sidecar or nginx on
the same host would make the report world-readable. (A bearer token satisfying
``StatsAccess.auth`` is the engine's other way in.)
"""

from __future__ import annotations

from propylon.config.model import StatsAccess
from propylon.http.cidr import CidrError, CidrSet


class StatsGate:
    __slots__ = ("_allowed", "enabled")

    def __init__(self, access: StatsAccess) -> None:
        self.enabled = access.enabled
        try:
            self._allowed = CidrSet(access.allow_cidrs)
        except CidrError as exc:
            raise ValueError(f"stats.allow_cidrs[{exc.index}]: {exc}") from None

    def client_allowed(self, client_ip: str) -> bool:
        return self.enabled and client_ip in self._allowed
