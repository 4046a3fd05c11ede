"""Who may use the operations listener: a bearer token, when one is configured.

``propylon run`` refuses to bind the listener beyond loopback without a token
(config/admin.py). When a token is set it is required on every endpoint except the ones an
orchestrator or a service must reach without one: liveness, readiness and the public
assertion keys (which are public by nature), and the dashboard's page itself, a static file
with no data in it (a browser cannot send a header when it opens an address; the page asks
for the token and sends it with its requests for ``/dashboard.json``, which is guarded).
Compared in constant time, so the answer's timing says nothing about how much of a guess was
right.
"""

from __future__ import annotations

import hmac

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/.well-known/jwks.json", "/"})


class TokenGuard:
    def __init__(self, token: bytes | None) -> None:
        self._token = token

    @property
    def required(self) -> bool:
        return self._token is not None

    def allows(self, path: str, authorization: str | None) -> bool:
        if self._token is None or path in OPEN_PATHS:
            return True
        if authorization is None:
            return False
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credential.strip().encode(), self._token)
