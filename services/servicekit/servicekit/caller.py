"""Who is calling: from the gateway's signed assertion, or (verification off) its headers.

With verification on (servicekit.assertion, a gateway key source configured) the caller is
the assertion's `sub` and `role`, and the bare `User` and role headers are ignored entirely:
anyone who reaches the port can send those. With it off, as before, the services trust the
gateway's `User` header (the gateway removes any client-sent copy before setting it from a
verified token), so they must be reachable only through the gateway; each service logs a
warning saying so at start-up.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from starlette.requests import Request

from servicekit.assertion import ASSERTION_HEADER, AssertionVerifier, InvalidAssertion
from servicekit.codes import ResponseCode
from servicekit.envelope import ServiceError

log = logging.getLogger("servicekit.caller")

DEFAULT_USER_HEADER = "User"

# Token subjects are usernames; anything else in the header is refused rather than stored.
_PLAUSIBLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def _unauthorized(message: str) -> ServiceError:
    return ServiceError(401, ResponseCode.Unauthorized, message)


def caller_name(value: str | None) -> str:
    if value is None or not _PLAUSIBLE_NAME.fullmatch(value):
        raise _unauthorized("The request carries no authenticated user identity.")
    return value


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    # The gateway's word for the caller's role: from a verified assertion, or from a role
    # header the service was told to trust; None when there is no word it may believe.
    role: str | None = None
    scopes: tuple[str, ...] = ()


class CallerSource:
    def __init__(
        self,
        verifier: AssertionVerifier | None,
        user_header: str = DEFAULT_USER_HEADER,
        role_header: str | None = None,
    ) -> None:
        self.verifier = verifier
        self.user_header = user_header
        self.role_header = role_header

    @property
    def verifies(self) -> bool:
        return self.verifier is not None

    def start(self, service: str) -> None:
        """At start-up: load the gateway's keys, or warn that bare headers are believed."""
        if self.verifier is None:
            log.warning(
                "%s trusts the bare %r header%s as the caller's identity (no gateway key "
                "source: set SERVICEKIT_GATEWAY_JWKS_URL or SERVICEKIT_GATEWAY_PUBLIC_KEYS_FILE"
                "): anything that can reach its port can act as any user",
                service,
                self.user_header,
                f" and {self.role_header!r}" if self.role_header else "",
            )
            return
        self.verifier.keys.load()
        log.info(
            "%s verifies gateway assertions (audience %r, keys from %s)",
            service,
            self.verifier.audience,
            self.verifier.keys.description,
        )

    def caller(self, request: Request) -> Caller:
        if self.verifier is None:
            name = caller_name(request.headers.get(self.user_header))
            role = request.headers.get(self.role_header) if self.role_header else None
            return Caller(name, role.strip().lower() if role else None)
        token = request.headers.get(ASSERTION_HEADER)
        if token is None:
            raise _unauthorized("The request carries no gateway assertion.")
        try:
            assertion = self.verifier.verify(token)
            if not _PLAUSIBLE_NAME.fullmatch(assertion.subject):
                raise InvalidAssertion("sub is not a username")
        except InvalidAssertion as exc:
            log.info(
                "gateway assertion refused on %s %s: %s", request.method, request.url.path, exc
            )
            raise _unauthorized("The request's gateway assertion is not valid.") from None
        return Caller(assertion.subject, assertion.role, assertion.scopes)
