"""The first seed's sequence diagram and the second seed's validation example, end to end."""

from __future__ import annotations

from tests.e2e.api import PASSWORD, GatewayApi, new_username


async def test_seed_one_sequence_diagram(api: GatewayApi) -> None:
    username = new_username("ada")
    credentials = {"username": username, "password": PASSWORD}

    created = await api.call("POST", "/auth/users", json=credentials)
    assert created.status == 201 and created.codemessage == "DataCreated", created
    assert created.data["username"] == username
    assert created.data["role"] == "user"

    login = await api.call("POST", "/auth/token", json=credentials)
    assert login.status == 200, login
    assert login.json()["code"] == 200 and login.codemessage == "LoginSuccess"
    assert login.data["token_type"] == "Bearer"
    token = login.data["access_token"]

    posted = await api.call(
        "POST", "/profiles", token=token, json={"display_name": "Ada", "location": "London"}
    )
    assert posted.status == 201 and posted.codemessage == "DataCreated", posted
    # The service learnt who the caller is only from the gateway: the e2e stack turns the
    # signed hop on, so from the gateway's signed assertion (bare User headers are ignored).
    assert posted.data["owner"] == username
    profile_id = posted.data["id"]

    one = await api.call("GET", f"/profiles/{profile_id}", token=token)
    assert one.status == 200 and one.codemessage == "DataFound", one
    assert one.data["owner"] == username
    assert one.data["display_name"] == "Ada" and one.data["location"] == "London"

    listed = await api.call("GET", "/profiles", token=token)
    assert listed.status == 200 and listed.codemessage == "DataFound", listed
    assert listed.data["total"] == 1
    assert [p["id"] for p in listed.data["items"]] == [profile_id]

    unknown = await api.call("GET", "/no-such-route")
    assert unknown.status == 404
    assert unknown.json() == {
        "code": 421,
        "codemessage": "RouteNotFound",
        "message": "No route matches this request.",
    }

    anonymous = await api.call("GET", "/profiles")
    assert anonymous.status == 401 and anonymous.codemessage == "Unauthorized", anonymous
    assert anonymous.headers.get("WWW-Authenticate", "").startswith("Bearer")

    garbage = await api.call("GET", "/profiles", token="not.a.jwt")
    assert garbage.status == 401 and garbage.codemessage == "Unauthorized", garbage


async def test_seed_two_validation_example(api: GatewayApi) -> None:
    reply = await api.call("POST", "/auth/token", json={"username": "", "password": ""})

    assert reply.status == 400, reply
    body = reply.json()
    assert body["code"] == 403
    assert body["codemessage"] == "ValidationError"
    assert body["data"] == {
        "Username": ["'Username' must not be empty."],
        "Password": ["'Password' must not be empty."],
    }
    assert "'Username' must not be empty." in body["message"]
    assert set(body) == {"code", "codemessage", "message", "data"}
