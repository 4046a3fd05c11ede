"""Phase 2: CORS. Preflights are answered here, before authentication (a browser never sends
credentials on a preflight); actual requests from an allowed origin get their
``Access-Control-*`` lines on whatever response the client gets, the upstream's or a
gateway-made 401, 403 or 429, so the page can read why it failed.

A request without ``Origin`` is not a cross-origin request and passes untouched (but for
``Vary: Origin``). An actual request from an origin that is not allowed goes on without CORS
headers: the browser then keeps the response from the page, which is what CORS is for (it is
not a defence against cross-site request forgery). A refused preflight is a 403 envelope
without CORS headers, so the browser refuses the actual request.
"""

from __future__ import annotations

from propylon import errors
from propylon.plane.stage import CONTINUE, Flow, RequestStage, ResponseStage
from propylon.policies.cors import VARY_ORIGIN, CorsRules

VARY = (("Vary", "Origin"),)


class Cors(RequestStage):
    name = "cors"

    __slots__ = ("rules",)

    def __init__(self, rules: CorsRules) -> None:
        self.rules = rules

    def on_request(self, flow: Flow) -> int:
        rules = self.rules
        origin = flow.header(b"origin")
        if flow.request.method == b"OPTIONS":
            asked = flow.header(b"access-control-request-method")
            if origin is not None and asked is not None:
                listed = flow.header(b"access-control-request-headers")
                lines = rules.preflight(origin, asked, listed)
                if lines is None:
                    return flow.refuse(errors.ORIGIN_REFUSED, VARY)
                return flow.answer(204, lines)
            if rules.route_methods is not None:
                # The route matches OPTIONS only so that preflights reach this stage.
                return flow.refuse(errors.METHOD_NOT_ALLOWED, (("Allow", rules.route_methods),))
        if origin is not None and rules.allows(origin):
            for line in rules.actual(origin):
                flow.add_response_line(line)
        elif rules.varies:
            flow.add_response_line(VARY_ORIGIN)
        return CONTINUE


class UpstreamCorsFields(ResponseStage):
    """On a route whose CORS the gateway answers, the upstream's own ``Access-Control-*``
    fields are dropped: next to the gateway's they would contradict them (a browser refuses
    a response with two ``Access-Control-Allow-Origin`` values), or allow what the route's
    policy does not."""

    name = "cors (upstream fields)"

    def on_response(self, flow: Flow, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        for name, _value in headers:
            # Length and the hyphen first: most names are shorter or differ there, and this
            # skips a slice and a lower() per response field.
            if len(name) > 15 and name[14] == 45 and name[:15].lower() == b"access-control-":
                headers[:] = [h for h in headers if h[0][:15].lower() != b"access-control-"]
                return
