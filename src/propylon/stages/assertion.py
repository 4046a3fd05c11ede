"""The signed hop: ``X-Gateway-Assertion`` on the way upstream (phase 9, the last).

Last in the chain because it signs what the stages before it decided: who the caller is
(the identity the route sends, as ``Identify`` computed it) and its role and scope. The
upstream can then believe the assertion instead of bare headers that anyone able to reach
its port could send. Only routes with assertions on have this stage, so a route without
pays nothing; one signer per worker is shared by all routes, and its memo makes a repeat
caller cost a dict lookup rather than a signature (about 50 us).
"""

from __future__ import annotations

from propylon import errors
from propylon.auth.assertion import AssertionSigner
from propylon.config.model import ClaimHeader
from propylon.plane.stage import CONTINUE, Flow, RequestStage
from propylon.policies.identity import claimed_identity
from propylon.stages.authn import CHALLENGE, INSUFFICIENT_SCOPE


class SignAssertion(RequestStage):
    name = "assertion"

    __slots__ = ("audience", "identity_claim", "signer")

    def __init__(
        self, signer: AssertionSigner, audience: str, identity_claim: ClaimHeader | None
    ) -> None:
        self.signer = signer
        self.audience = audience
        self.identity_claim = identity_claim

    def on_request(self, flow: Flow) -> int:
        principal = flow.principal
        if principal is None:
            # Built only on authenticated routes, after Authenticate: never reached in
            # practice, and refused rather than signing for nobody.
            return flow.refuse(errors.UNAUTHORIZED, CHALLENGE)
        claim = self.identity_claim
        subject = principal.subject if claim is None else claimed_identity(principal.claims, claim)
        if subject is None:
            return flow.refuse(errors.FORBIDDEN, INSUFFICIENT_SCOPE)
        flow.add_upstream_line(self.signer.line(subject, self.audience, principal.claims))
        return CONTINUE
