"""Gateway-made errors: the kinds, and their JSON envelope (``engine/responder.py`` writes
them as HTTP responses).

Bodies use the response envelope of the second seed (``{code, codemessage, message}``), with
``code`` from the code table the gateway and the services share (docs/error-codes.md); the
HTTP status is the semantic one. Messages are fixed strings chosen here: no exception text,
host, port or path of the deployment ever reaches a client.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class ErrorKind:
    status: int
    """The HTTP status: always the semantic one (RFC 9110)."""
    code: int
    """The envelope's ``code``, from the one table the gateway and the services share
    (docs/error-codes.md): one ``codemessage`` per code, never the HTTP status by default."""
    codemessage: str
    message: str


BAD_REQUEST = ErrorKind(400, 420, "BadRequest", "The request is malformed.")
BAD_PATH = ErrorKind(400, 420, "BadRequest", "The request path is not acceptable.")
UNAUTHORIZED = ErrorKind(401, 405, "Unauthorized", "A valid bearer token is required.")
FORBIDDEN = ErrorKind(403, 409, "Restricted", "The token does not grant access to this route.")
ADDRESS_REFUSED = ErrorKind(403, 409, "Restricted", "The client address may not use this route.")
ORIGIN_REFUSED = ErrorKind(403, 409, "Restricted", "The origin may not use this route.")
ROUTE_NOT_FOUND = ErrorKind(404, 421, "RouteNotFound", "No route matches this request.")
METHOD_NOT_ALLOWED = ErrorKind(
    405, 422, "MethodNotAllowed", "The route does not accept this method."
)
REQUEST_TIMEOUT = ErrorKind(408, 423, "RequestTimeout", "The request was not received in time.")
PAYLOAD_TOO_LARGE = ErrorKind(413, 424, "PayloadTooLarge", "The request body is too large.")
URI_TOO_LONG = ErrorKind(414, 425, "UriTooLong", "The request target is too long.")
HEADERS_TOO_LARGE = ErrorKind(
    431, 426, "RequestHeaderFieldsTooLarge", "The request headers are too large."
)
PLUGIN_REFUSED = ErrorKind(403, 429, "PluginRefused", "A plugin refused the request.")
"""The template of a plugin's refusal: the plugin chooses the status and the message."""
RATE_LIMITED = ErrorKind(
    429, 427, "RateLimited", "Too many requests: a rate limit of this route is exhausted."
)
"""Native limits; an Ocelot route's refusal carries its own status and ``QuotaMessage``
(``stages/rate_limit.py`` builds that kind once per route)."""
CLIENT_NOT_IDENTIFIED = ErrorKind(
    503, 428, "ClientNotIdentified", "The rate-limited route needs a client id header."
)
"""Ocelot's answer to a request without the ``ClientIdHeader`` of a limited route (503, as
in Ocelot; the message is Ocelot's, naming the route and the rule)."""
STATE_UNAVAILABLE = ErrorKind(
    503, 511, "NotReady", "The rate-limit store does not answer; try again shortly."
)
"""A limited route whose counters live in Redis, while Redis does not answer and the
failure policy is ``closed``."""
METHOD_NOT_IMPLEMENTED = ErrorKind(
    501, 520, "NotImplemented", "The gateway does not implement this method."
)
UPGRADE_NOT_IMPLEMENTED = ErrorKind(
    501, 520, "NotImplemented", "Protocol upgrades with a request body are not supported."
)
UPSTREAM_UNAVAILABLE = ErrorKind(
    502, 521, "UpstreamUnavailable", "The upstream service is unavailable."
)
NO_UPSTREAM = ErrorKind(503, 521, "UpstreamUnavailable", "No upstream host is available.")
"""Every host of the route is out (ejected after failures, or failing its health checks):
answered at once, without a connect attempt."""
CIRCUIT_OPEN = ErrorKind(
    503, 525, "CircuitOpen", "The route's circuit breaker is open; try again later."
)
"""The route's circuit breaker is open (or half-open with its one probe in flight);
``Retry-After`` says when it lets a request through again."""
BAD_UPSTREAM_RESPONSE = ErrorKind(
    502, 523, "BadUpstreamResponse", "The upstream service sent an invalid response."
)
UPSTREAM_TIMEOUT = ErrorKind(
    504, 522, "UpstreamTimeout", "The upstream service did not answer in time."
)
SHUTTING_DOWN = ErrorKind(503, 524, "ShuttingDown", "The gateway is shutting down.")
CONFIG_REJECTED = ErrorKind(
    400, 526, "ConfigRejected", "The new config is not valid; the previous one still serves."
)
INTERNAL = ErrorKind(
    500, 500, "UndefinedServerException", "The gateway failed to handle the request."
)


def envelope(code: int, codemessage: str, message: str, data: object = None) -> bytes:
    body: dict[str, object] = {"code": code, "codemessage": codemessage, "message": message}
    if data is not None:
        body["data"] = data
    return orjson.dumps(body)
