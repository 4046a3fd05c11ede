"""Config -> each route's request stages: the stage registry, and the one fixed order.

Every request stage of every route is chosen here, once per worker at start-up (and, later,
on each reload). A feature a route does not configure adds nothing to its tuple, so a plain
proxied route runs no stage at all. The order is fixed by phase, the same for every route:

1. ``ip_filter``   client address allowed / blocked (403)                 before anything
2. ``cors``        preflight answered; response headers for the origin    before auth
3. ``rate_limit``  Ocelot ``RateLimitOptions`` (keyed by a client header)  before auth, as
                                                                          in Ocelot
4. ``authenticate`` bearer token -> principal (401); may wait for JWKS keys
5. ``authorize``   scopes, claims (403)
6. ``rate_limit``  native limits (may be keyed by the verified identity)   after auth
7. ``identify``    identity header, claim headers
8. ``plugins``     user stages, in the order the route lists them
9. ``assertion``   the signed gateway assertion (last: it signs what the stages decided)

Stages never see each other; they meet only on the flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from propylon.auth import Authenticator
from propylon.auth.assertion import AssertionSigner, signer_for
from propylon.config.model import GatewayConfig, RouteSpec
from propylon.plane.stage import RequestStage
from propylon.policies.claim_headers import ClaimHeaders
from propylon.policies.identity import IdentityHeader
from propylon.stages.assertion import SignAssertion
from propylon.stages.authn import Authenticate, Authorize, Identify


class Site:
    """What one worker's stages share: built once per worker, before its chains."""

    def __init__(
        self,
        config: GatewayConfig,
        authenticator: Authenticator,
        identity: IdentityHeader,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        *,
        worker_id: int = 0,
        workers: int = 1,
        run_dir: str | None = None,
    ) -> None:
        self.config = config
        self.authenticator = authenticator
        self.identity = identity
        self.spawn = spawn
        self.worker_id = worker_id
        self.workers = workers
        self.run_dir = run_dir
        self.loop = asyncio.get_running_loop()
        self._signer: AssertionSigner | None = None

    def assertion_signer(self) -> AssertionSigner:
        """The worker's one signer (one memo for all routes), built when a route needs it."""
        signer = self._signer
        if signer is None:
            settings = self.config.assertion
            if settings is None:
                raise ValueError("a route signs assertions but the config has no key")
            signer = signer_for(settings)
            self._signer = signer
        return signer


def route_stages(spec: RouteSpec, site: Site) -> tuple[RequestStage, ...]:
    """The request stages of one route, in phase order (see the module docstring)."""
    stages: list[RequestStage] = []
    auth = spec.auth
    if auth is not None:
        stages.append(Authenticate(site.authenticator, auth))
        if auth.allowed_scopes or auth.required_claims:
            stages.append(Authorize(auth))
        stages.append(
            Identify(site.identity, spec.identity_claim, ClaimHeaders(spec.claim_headers))
        )
        if spec.assertion_audience is not None:
            stages.append(
                SignAssertion(site.assertion_signer(), spec.assertion_audience, spec.identity_claim)
            )
    return tuple(stages)
