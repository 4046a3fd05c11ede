"""IP allow and block rules (Ocelot's ``SecurityOptions``): may this client address use a route?

Ocelot's ``IPSecurityPolicy`` decides in two steps, and so does this:

1. an address in the block list is refused, unless ``exclude_allowed_from_blocked`` is set
   and the address is also in the allow list (Ocelot removes the allowed addresses from the
   blocked set at load time; testing both lists here is the same set, without expanding a
   ``/8`` into sixteen million strings);
2. when the allow list is not empty, an address outside it is refused.

An address that is no IP address at all (nothing should produce one) is in neither list:
a block list lets it through, an allow list refuses it.
"""

from __future__ import annotations

from typing import Final

from propylon.config.model import IpRules
from propylon.http.cidr import CidrSet


class IpPolicy:
    """One route's rules, parsed once."""

    __slots__ = ("allowed", "blocked", "exclude_allowed")

    def __init__(self, rules: IpRules) -> None:
        self.allowed: Final = CidrSet(rules.allowed)
        self.blocked: Final = CidrSet(rules.blocked)
        self.exclude_allowed: Final = rules.exclude_allowed_from_blocked

    def admits(self, address: str) -> bool:
        allowed = self.allowed
        if (
            self.blocked
            and address in self.blocked
            and not (self.exclude_allowed and address in allowed)
        ):
            return False
        return not allowed or address in allowed
