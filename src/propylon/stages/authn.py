"""Authentication, authorization and identity: the stages of every route that needs a token.

``Authenticate`` verifies the bearer token (a token-cache hit is one lookup) and sets the
flow's principal; when a JWKS provider must first fetch keys for an unknown ``kid`` it waits
(``PENDING``) and checks the token again once the keys arrived. ``Authorize`` checks scopes
and claims (403). ``Identify`` adds the identity header and the claim headers upstream.

On a route with ``anonymous_options`` (every Ocelot route, as Ocelot's authentication and
authorization middlewares skip ``OPTIONS``; a native route that asks for it) an ``OPTIONS``
request skips all three: it goes upstream with no principal, so with no identity header
and no claim headers (the client's copies are stripped on every route anyway).
"""

from __future__ import annotations

from propylon import errors
from propylon.auth import Authenticator, AuthFailure, KeyRefreshNeeded, authorize
from propylon.config.model import AuthRequirement, ClaimHeader
from propylon.plane.stage import CONTINUE, Flow, RequestStage
from propylon.policies.claim_headers import ClaimHeaders
from propylon.policies.identity import IdentityHeader, claimed_identity

CHALLENGE = (("WWW-Authenticate", "Bearer"),)
INVALID_TOKEN = (("WWW-Authenticate", 'Bearer error="invalid_token"'),)
INSUFFICIENT_SCOPE = (("WWW-Authenticate", 'Bearer error="insufficient_scope"'),)
OPTIONS = b"OPTIONS"


class Authenticate(RequestStage):
    name = "authenticate"

    __slots__ = ("anonymous_options", "authenticator", "providers")

    def __init__(
        self,
        authenticator: Authenticator,
        requirement: AuthRequirement,
        *,
        anonymous_options: bool = False,
    ) -> None:
        self.authenticator = authenticator
        self.providers = requirement.providers
        self.anonymous_options = anonymous_options

    def on_request(self, flow: Flow) -> int:
        if self.anonymous_options and flow.request.method == OPTIONS:
            # Not even a valid token is looked at: the request stays anonymous, as in Ocelot.
            return CONTINUE
        authorization = flow.request.authorization
        try:
            flow.principal = self.authenticator.authenticate(authorization, self.providers)
        except KeyRefreshNeeded:
            # A JWKS provider has no key for this token's kid yet: wait for the (shared)
            # refresh, then check once more. The body waits under flow control meanwhile.
            return flow.spawn(self._after_refresh(flow))
        except AuthFailure:
            return flow.refuse(errors.UNAUTHORIZED, INVALID_TOKEN if authorization else CHALLENGE)
        return CONTINUE

    async def _after_refresh(self, flow: Flow) -> int:
        try:
            flow.principal = await self.authenticator.authenticate_async(
                flow.request.authorization, self.providers
            )
        except AuthFailure:
            return flow.refuse(errors.UNAUTHORIZED, INVALID_TOKEN)
        return CONTINUE


class Authorize(RequestStage):
    """Scopes and claims the route requires (403 when the principal lacks them)."""

    name = "authorize"

    __slots__ = ("anonymous_options", "requirement")

    def __init__(self, requirement: AuthRequirement, *, anonymous_options: bool = False) -> None:
        self.requirement = requirement
        self.anonymous_options = anonymous_options

    def on_request(self, flow: Flow) -> int:
        principal = flow.principal
        if principal is not None and authorize(principal, self.requirement):
            return CONTINUE
        if principal is None and self.anonymous_options and flow.request.method == OPTIONS:
            return CONTINUE
        return flow.refuse(errors.FORBIDDEN, INSUFFICIENT_SCOPE)


class Identify(RequestStage):
    """The identity header (the ``sub``, or the route's identity claim) and claim headers."""

    name = "identify"

    __slots__ = ("anonymous_options", "claim_headers", "identity", "identity_claim")

    def __init__(
        self,
        identity: IdentityHeader,
        identity_claim: ClaimHeader | None,
        claim_headers: ClaimHeaders,
        *,
        anonymous_options: bool = False,
    ) -> None:
        self.identity = identity
        self.identity_claim = identity_claim
        self.claim_headers = claim_headers
        self.anonymous_options = anonymous_options

    def on_request(self, flow: Flow) -> int:
        principal = flow.principal
        if principal is None:
            if self.anonymous_options and flow.request.method == OPTIONS:
                return CONTINUE
            return flow.refuse(errors.UNAUTHORIZED, CHALLENGE)
        claim = self.identity_claim
        subject = principal.subject if claim is None else claimed_identity(principal.claims, claim)
        if subject is None:
            # A valid token without the claim this route sends as the identity names nobody
            # here: refused, never forwarded with the sub or with no identity.
            return flow.refuse(errors.FORBIDDEN, INSUFFICIENT_SCOPE)
        line = self.identity.line(subject)
        if line is None:
            return flow.refuse(errors.UNAUTHORIZED, INVALID_TOKEN)
        lines = flow.upstream_lines
        lines.append(line)
        if self.claim_headers:
            lines.extend(self.claim_headers.lines(principal.claims))
        return CONTINUE
