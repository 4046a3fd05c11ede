"""A client of the gateway that sees what a user sees: status, headers, body bytes.

Only the gateway's address is known here; the services behind it are never called directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy

# Every call is bounded; the 5 MiB avatar is the slowest thing sent, and it is loopback.
CALL_TIMEOUT = aiohttp.ClientTimeout(total=20)

PASSWORD = "a perfectly fine e2e password"


@dataclass(frozen=True, slots=True, repr=False)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def codemessage(self) -> str:
        return str(self.json()["codemessage"])

    @property
    def data(self) -> Any:
        return self.json()["data"]

    def __repr__(self) -> str:
        # What an assertion failure shows (pytest repr()s the message): status and body.
        return f"HTTP {self.status} {self.body[:600]!r}"


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password: str
    access_token: str
    refresh_token: str


def new_username(prefix: str) -> str:
    """A username no other test (or earlier run on the same database) has used."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class GatewayApi:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | CIMultiDict[str] | None = None,
    ) -> Reply:
        sent: CIMultiDict[str] = CIMultiDict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, self.base_url + path, json=json, data=data, headers=sent, timeout=CALL_TIMEOUT
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    async def sign_up(self, prefix: str) -> Account:
        """Create a user through the gateway and log in as them."""
        username = new_username(prefix)
        created = await self.call(
            "POST", "/auth/users", json={"username": username, "password": PASSWORD}
        )
        assert created.status == 201, created
        return await self.log_in(username, PASSWORD)

    async def log_in(self, username: str, password: str) -> Account:
        reply = await self.call(
            "POST", "/auth/token", json={"username": username, "password": password}
        )
        assert reply.status == 200 and reply.codemessage == "LoginSuccess", reply
        tokens = reply.data
        return Account(username, password, tokens["access_token"], tokens["refresh_token"])

    async def create_profile(self, owner: Account, display_name: str) -> dict[str, Any]:
        reply = await self.call(
            "POST", "/profiles", token=owner.access_token, json={"display_name": display_name}
        )
        assert reply.status == 201 and reply.codemessage == "DataCreated", reply
        profile: dict[str, Any] = reply.data
        return profile

    async def stats(self) -> dict[str, Any]:
        reply = await self.call("GET", "/stats")
        assert reply.status == 200, reply
        report: dict[str, Any] = reply.json()
        return report
