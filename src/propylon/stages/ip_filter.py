"""Phase 1: the route's IP allow and block rules (Ocelot ``SecurityOptions``), before anything.

The address judged is the client's (``flow.client_address()``): the TCP peer's, or the one a
configured trusted proxy forwarded for. A client that writes its own ``X-Forwarded-For``
gains nothing by it unless its peer is such a proxy.
"""

from __future__ import annotations

from propylon import errors
from propylon.plane.stage import CONTINUE, Flow, RequestStage
from propylon.policies.ip_rules import IpPolicy


class IpFilter(RequestStage):
    name = "ip_filter"

    __slots__ = ("policy",)

    def __init__(self, policy: IpPolicy) -> None:
        self.policy = policy

    def on_request(self, flow: Flow) -> int:
        if self.policy.admits(flow.client_address()):
            return CONTINUE
        return flow.refuse(errors.ADDRESS_REFUSED)
