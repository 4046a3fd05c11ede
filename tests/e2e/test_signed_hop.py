"""The signed hop end to end (#15 item 4): a service reached past the gateway believes no
header, and the same request through the gateway, with a real token from identity, works."""

from __future__ import annotations

import aiohttp

from propylon.auth.assertion import ASSERTION_HEADER
from tests.e2e.api import Account, GatewayApi
from tests.e2e.stack import ADMIN_USERNAME, RunningStack

FORGED = {"User": ADMIN_USERNAME, "X-User-Role": "admin"}


async def _direct(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    async with session.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_forged_identity_headers_straight_to_identity_are_refused(
    stack: RunningStack, api: GatewayApi, admin: Account
) -> None:
    status, body = await _direct(api.session, stack.identity_url + "/auth/users", FORGED)
    assert status == 401, body
    assert body["codemessage"] == "Unauthorized"
    # A forged assertion is no better than a bare header.
    status, body = await _direct(
        api.session,
        stack.identity_url + "/auth/users",
        {**FORGED, ASSERTION_HEADER.decode(): "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."},
    )
    assert status == 401, body

    # The same request through the gateway, as the real admin: the role reaches identity in
    # the signed assertion.
    path = "/auth/users?page_size=100"
    through = await api.call("GET", path, token=admin.access_token, headers=FORGED)
    assert through.status == 200 and through.codemessage == "DataFound", through
    assert ADMIN_USERNAME in {user["username"] for user in through.data["items"]}


async def test_forged_role_straight_to_profiles_is_refused(
    stack: RunningStack, api: GatewayApi, admin: Account
) -> None:
    owner = await api.sign_up("signed-hop")
    await api.create_profile(owner, "Signed Hop")

    forged = {"User": owner.username, "X-User-Role": "admin"}
    status, body = await _direct(api.session, stack.profiles_url + "/profiles", forged)
    assert status == 401, body

    # Through the gateway the same headers are stripped; the caller is who the token says,
    # and a plain user sees only their own profile, whatever X-User-Role claimed.
    through = await api.call("GET", "/profiles", token=owner.access_token, headers=forged)
    assert through.status == 200, through
    assert {profile["owner"] for profile in through.data["items"]} == {owner.username}

    # The real admin's role comes through in the assertion: they see everyone's profiles.
    listed = await api.call("GET", "/profiles?page_size=100", token=admin.access_token)
    assert listed.status == 200, listed
    assert owner.username in {profile["owner"] for profile in listed.data["items"]}
