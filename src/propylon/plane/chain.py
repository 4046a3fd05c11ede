"""A route's chain, and the one place stages are sequenced.

``Chain.run`` is the request path of every route after routing: request stages in their fixed
order (``plane/build.py`` documents it), then the terminal. A stage's ``RESPOND`` goes to the
chain's ``Ending`` (the engine's responder), a ``PENDING`` stops here until the stage calls
``flow.resume``, which picks up right after it.
"""

from __future__ import annotations

from mypy_extensions import trait

from propylon.plane.stage import CONTINUE, PENDING, Flow, RequestStage, ResponseStage


@trait
class Ending:
    """Where a flow ends: implemented by the engine, which the plane never imports."""

    def forward(self, flow: Flow) -> None:
        """Every stage continued: send the request upstream (the terminal)."""
        raise NotImplementedError

    def respond(self, flow: Flow) -> None:
        """A stage answered (``flow.reply``): send that answer to the client."""
        raise NotImplementedError


class Chain:
    """The request stages of one route and where its requests end; immutable once built.
    It is the ``Resumer`` of its flows."""

    __slots__ = ("ending", "names", "response_stages", "stages", "timed")

    def __init__(
        self,
        stages: tuple[RequestStage, ...],
        ending: Ending,
        response_stages: tuple[ResponseStage, ...] = (),
        *,
        timed: bool = False,
    ) -> None:
        self.stages = stages
        self.ending = ending
        self.response_stages = response_stages
        """Run by the exchange (the response head) and at every end; empty for most routes."""
        self.timed = timed or bool(response_stages)
        """Requests note when the route took them (``Flow.started``): response stages read
        it, and the access log (``timed``: the gateway asks for it when the log is on)."""
        self.names = tuple(stage.name for stage in stages) + tuple(
            stage.name for stage in response_stages
        )

    def run(self, flow: Flow) -> None:
        stages = self.stages
        if stages:
            self._run_from(flow, 0)
        else:
            self.ending.forward(flow)

    def _run_from(self, flow: Flow, start: int) -> None:
        stages = self.stages
        index = start
        count = len(stages)
        while index < count:
            flow.position = index
            outcome = stages[index].on_request(flow)
            if outcome != CONTINUE:
                if outcome != PENDING:
                    self.ending.respond(flow)
                return
            index += 1
        self.ending.forward(flow)

    def response_head(self, flow: Flow, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        for stage in self.response_stages:
            stage.on_response(flow, status, headers)

    def ended(self, flow: Flow, status: int, seconds: float) -> None:
        for stage in self.response_stages:
            stage.on_end(flow, status, seconds)

    def resume(self, flow: Flow, outcome: int) -> None:
        if outcome == CONTINUE:
            self._run_from(flow, flow.position + 1)
        elif outcome == PENDING:
            # The stage waits once more (it spawned again); it will resume the flow itself.
            return
        else:
            self.ending.respond(flow)
