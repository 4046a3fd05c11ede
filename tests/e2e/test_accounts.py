"""Account lifecycle through the gateway: password change, log out everywhere, admin reset,
deletion; each through the shipped routes, as a client sees it."""

from __future__ import annotations

from tests.e2e.api import Account, GatewayApi


async def _refresh_status(api: GatewayApi, token: str) -> int:
    reply = await api.call("POST", "/auth/token/refresh", json={"refresh_token": token})
    return reply.status


async def test_changing_the_password_ends_other_sessions(api: GatewayApi) -> None:
    account = await api.sign_up("changer")
    other = await api.log_in(account.username, account.password)
    changed = await api.call(
        "POST",
        "/auth/me/password",
        token=account.access_token,
        json={"current_password": account.password, "new_password": "a new e2e password"},
    )
    assert changed.status == 200 and changed.codemessage == "DataUpdated", changed
    assert await _refresh_status(api, other.refresh_token) == 401
    assert await _refresh_status(api, changed.data["refresh_token"]) == 200
    await api.log_in(account.username, "a new e2e password")


async def test_log_out_everywhere_and_delete_the_account(api: GatewayApi) -> None:
    account = await api.sign_up("leaver")
    revoked = await api.call("POST", "/auth/token/revoke-all", token=account.access_token)
    assert revoked.status == 200 and revoked.codemessage == "TokenRevoked", revoked
    assert await _refresh_status(api, account.refresh_token) == 401

    deleted = await api.call(
        "DELETE", "/auth/me", token=account.access_token, json={"password": account.password}
    )
    assert deleted.status == 200 and deleted.codemessage == "DataDeleted", deleted
    again = await api.call(
        "POST", "/auth/users", json={"username": account.username, "password": "whatever pw 1"}
    )
    assert again.status == 409 and again.codemessage == "NotUnique", again


async def test_an_admin_resets_a_password_and_deletes_a_user(
    api: GatewayApi, admin: Account
) -> None:
    user = await api.sign_up("managed")
    refused = await api.call(
        "PUT",
        f"/auth/users/{user.username}/password",
        token=user.access_token,
        json={"password": "self-service reset"},
    )
    assert refused.status == 403, refused  # the gateway's role requirement
    reset = await api.call(
        "PUT",
        f"/auth/users/{user.username}/password",
        token=admin.access_token,
        json={"password": "set by the e2e admin"},
    )
    assert reset.status == 200 and reset.codemessage == "DataUpdated", reset
    assert await _refresh_status(api, user.refresh_token) == 401
    await api.log_in(user.username, "set by the e2e admin")
    deleted = await api.call("DELETE", f"/auth/users/{user.username}", token=admin.access_token)
    assert deleted.status == 200 and deleted.codemessage == "DataDeleted", deleted
