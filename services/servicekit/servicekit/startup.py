"""Start-up refusals that an operator can act on: one line, no traceback.

A service's lifespan raises `StartupError` when it must not serve (a malformed key file, an
admin bootstrap that would take over an account, ...). Starlette turns any lifespan failure
into a `lifespan.startup.failed` message carrying the full traceback, which uvicorn logs;
`StartupErrorReporter` replaces that text with the error's own one-line message, so the log
says what to fix and nothing else. Any other exception keeps its traceback: that is a bug.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StartupError(RuntimeError):
    """The service refuses to start; the message says why and what to change."""


class StartupErrorReporter:
    """ASGI middleware: a `StartupError` during start-up is reported as its message alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_failure(message: Message) -> None:
            # The failure message is sent just before the exception is re-raised: keep it
            # until the exception shows which text the server should log.
            if message["type"] == "lifespan.startup.failed":
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except StartupError as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        except BaseException:
            for message in held:
                await send(message)
            raise
        for message in held:
            await send(message)
