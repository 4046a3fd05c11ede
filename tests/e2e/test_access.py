"""Who may do what: admin-only routes, spoofed identity headers, and profile ownership."""

from __future__ import annotations

from multidict import CIMultiDict

from tests.e2e.api import Account, GatewayApi
from tests.e2e.stack import RunningStack

GATEWAY_FORBIDDEN = {
    "code": 409,
    "codemessage": "Restricted",
    "message": "The token does not grant access to this route.",
}


async def _identity_requests(api: GatewayApi, stack: RunningStack) -> int:
    # The identity upstream is known by now: signing up went through it.
    return int((await api.stats())["upstreams"][stack.identity_upstream]["requests"])


async def test_admin_routes_refuse_a_user_at_the_gateway(
    api: GatewayApi, stack: RunningStack
) -> None:
    user = await api.sign_up("plain")
    before = await _identity_requests(api, stack)
    assert before >= 2

    listed = await api.call("GET", "/auth/users", token=user.access_token)
    promoted = await api.call(
        "PATCH",
        f"/auth/users/{user.username}/role",
        token=user.access_token,
        json={"role": "admin"},
    )

    assert listed.status == 403 and listed.json() == GATEWAY_FORBIDDEN, listed
    assert promoted.status == 403 and promoted.json() == GATEWAY_FORBIDDEN, promoted
    # The refusal came from the gateway: nothing reached the identity service.
    assert await _identity_requests(api, stack) == before


async def test_admin_lists_users_and_changes_a_role(api: GatewayApi, admin: Account) -> None:
    user = await api.sign_up("promoted")

    listed = await api.call("GET", "/auth/users?page_size=100", token=admin.access_token)
    assert listed.status == 200 and listed.codemessage == "DataFound", listed
    names = {u["username"]: u["role"] for u in listed.data["items"]}
    assert names[admin.username] == "admin"
    assert listed.data["total"] >= 2

    changed = await api.call(
        "PATCH",
        f"/auth/users/{user.username}/role",
        token=admin.access_token,
        json={"role": "admin"},
    )
    assert changed.status == 200 and changed.codemessage == "DataUpdated", changed
    assert changed.data == {**changed.data, "username": user.username, "role": "admin"}

    # The role travels in the token: the old one still says "user", a new login says "admin".
    stale = await api.call("GET", "/auth/users", token=user.access_token)
    assert stale.status == 403, stale
    fresh = await api.log_in(user.username, user.password)
    now_admin = await api.call("GET", "/auth/users", token=fresh.access_token)
    assert now_admin.status == 200 and now_admin.codemessage == "DataFound", now_admin


async def test_spoofed_identity_headers_grant_nothing(api: GatewayApi) -> None:
    victim = await api.sign_up("victim")
    intruder = await api.sign_up("intruder")
    profile = await api.create_profile(victim, "Victim")
    spoofed = CIMultiDict(
        [
            ("X-User-Role", "admin"),
            ("x-user-role", "admin"),
            ("User", victim.username),
            ("user", victim.username),
            ("USER", victim.username),
        ]
    )

    one = await api.call(
        "GET", f"/profiles/{profile['id']}", token=intruder.access_token, headers=spoofed
    )
    assert one.status == 404 and one.codemessage == "ObjectNotFound", one

    listed = await api.call("GET", "/profiles", token=intruder.access_token, headers=spoofed)
    assert listed.status == 200 and listed.data["total"] == 0, listed

    created = await api.call(
        "POST",
        "/profiles",
        token=intruder.access_token,
        headers=spoofed,
        json={"display_name": "Not the victim"},
    )
    assert created.status == 201 and created.data["owner"] == intruder.username, created


async def test_users_cannot_reach_each_others_profiles(api: GatewayApi, admin: Account) -> None:
    owner = await api.sign_up("owner")
    other = await api.sign_up("other")
    profile = await api.create_profile(owner, "Original")
    path = f"/profiles/{profile['id']}"

    got = await api.call("GET", path, token=other.access_token)
    patched = await api.call(
        "PATCH", path, token=other.access_token, json={"display_name": "Defaced"}
    )
    deleted = await api.call("DELETE", path, token=other.access_token)
    avatar = await api.call("GET", f"{path}/avatar", token=other.access_token)
    for reply in (got, patched, deleted, avatar):
        # "Not found", never "forbidden": another user's profile does not exist for them.
        assert reply.status == 404 and reply.codemessage == "ObjectNotFound", reply

    unchanged = await api.call("GET", path, token=owner.access_token)
    assert unchanged.status == 200 and unchanged.data["display_name"] == "Original", unchanged

    # The admin's role claim becomes X-User-Role at the gateway, which the service trusts.
    seen_by_admin = await api.call("GET", path, token=admin.access_token)
    assert seen_by_admin.status == 200, seen_by_admin
    assert seen_by_admin.data["owner"] == owner.username

    renamed = await api.call("PATCH", path, token=owner.access_token, json={"bio": "mine"})
    assert renamed.status == 200 and renamed.codemessage == "DataUpdated", renamed
    assert renamed.data["bio"] == "mine"
    removed = await api.call("DELETE", path, token=owner.access_token)
    assert removed.status == 200 and removed.codemessage == "DataDeleted", removed
    gone = await api.call("GET", path, token=owner.access_token)
    assert gone.status == 404, gone
