"""Profiles: CRUD in the envelope, ownership by the `User` header, admin view, pagination."""

from __future__ import annotations

import uuid
from typing import Any

from tests.services.client import ServiceClient


def someone() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def create(client: ServiceClient, **fields: Any) -> dict[str, Any]:
    reply = client.post("/profiles", {"display_name": "Ada", **fields})
    assert reply.envelope == (201, 204, "DataCreated"), reply.body
    data: dict[str, Any] = reply.json["data"]
    return data


def test_requests_without_a_user_header_are_refused(profiles: ServiceClient) -> None:
    for method, path in (("GET", "/profiles"), ("POST", "/profiles"), ("GET", "/profiles/1")):
        reply = profiles.call(method, path)
        assert reply.json == {
            "code": 405,
            "codemessage": "Unauthorized",
            "message": "The request carries no authenticated user identity.",
        }
        assert reply.status == 401


def test_create_and_get_a_profile(profiles: ServiceClient) -> None:
    me = profiles.as_user(someone())
    created = create(me, bio="Analyst", location="London")
    assert created["owner"] == me.user
    assert (created["display_name"], created["bio"], created["location"]) == (
        "Ada",
        "Analyst",
        "London",
    )
    assert created["avatar"] is None
    fetched = me.get(f"/profiles/{created['id']}")
    assert fetched.envelope == (200, 203, "DataFound")
    assert fetched.json["data"] == created


def test_the_owner_comes_from_the_header_not_the_body(profiles: ServiceClient) -> None:
    me = profiles.as_user(someone())
    reply = me.post("/profiles", {"display_name": "Ada", "owner": "someone-else"})
    assert reply.status == 400
    assert reply.json["data"] == {"Owner": ["'Owner' is not a recognised field."]}


def test_profile_validation_shape(profiles: ServiceClient) -> None:
    me = profiles.as_user(someone())
    reply = me.post("/profiles", {"display_name": "", "bio": "x" * 1001})
    assert reply.json == {
        "code": 403,
        "codemessage": "ValidationError",
        "message": "Validation failed: \n -- DisplayName: 'DisplayName' must not be empty. "
        "Severity: Error\n -- Bio: The length of 'Bio' must be 1000 characters or fewer. "
        "You entered 1001 characters. Severity: Error",
        "data": {
            "DisplayName": ["'DisplayName' must not be empty."],
            "Bio": [
                "The length of 'Bio' must be 1000 characters or fewer. You entered 1001 characters."
            ],
        },
    }
    assert reply.status == 400


def test_partial_update_changes_only_the_given_fields(profiles: ServiceClient) -> None:
    me = profiles.as_user(someone())
    created = create(me, bio="old bio", location="Paris")
    reply = me.patch(f"/profiles/{created['id']}", {"bio": "new bio"})
    assert reply.envelope == (200, 206, "DataUpdated")
    data = reply.json["data"]
    assert (data["display_name"], data["bio"], data["location"]) == ("Ada", "new bio", "Paris")
    assert me.get(f"/profiles/{created['id']}").json["data"]["bio"] == "new bio"


def test_update_errors(profiles: ServiceClient) -> None:
    me = profiles.as_user(someone())
    created = create(me)
    nothing = me.patch(f"/profiles/{created['id']}", {})
    assert nothing.envelope == (400, 407, "ObjectNotUpdated")
    nulled = me.patch(f"/profiles/{created['id']}", {"display_name": None})
    assert nulled.json["data"] == {"DisplayName": ["'DisplayName' must not be empty."]}
    missing = me.patch("/profiles/999999999", {"bio": "x"})
    assert missing.envelope == (404, 406, "ObjectNotFound")
    bad_id = me.get("/profiles/abc")
    assert bad_id.json["data"] == {"ProfileId": ["'ProfileId' must be a whole number."]}


def test_delete_a_profile(profiles: ServiceClient) -> None:
    me = profiles.as_user(someone())
    created = create(me)
    reply = me.delete(f"/profiles/{created['id']}")
    assert reply.json == {"code": 205, "codemessage": "DataDeleted", "message": "Profile deleted."}
    assert me.get(f"/profiles/{created['id']}").status == 404
    assert me.delete(f"/profiles/{created['id']}").status == 404


def test_a_user_cannot_read_or_change_another_users_profile(profiles: ServiceClient) -> None:
    alice, bob = profiles.as_user(someone()), profiles.as_user(someone())
    hers = create(alice)
    path = f"/profiles/{hers['id']}"
    assert bob.get(path).envelope == (404, 406, "ObjectNotFound")
    assert bob.patch(path, {"bio": "pwned"}).status == 404
    assert bob.delete(path).status == 404
    assert all(p["owner"] == bob.user for p in bob.get("/profiles").json["data"]["items"])
    assert alice.get(path).json["data"]["bio"] == ""


def test_role_header_grants_admin_view(profiles: ServiceClient) -> None:
    alice = profiles.as_user(someone())
    hers = create(alice)
    admin = profiles.as_user("the-admin")
    seen = admin.get(f"/profiles/{hers['id']}", headers={"X-User-Role": "admin"})
    assert seen.status == 200
    listed = admin.get("/profiles?page_size=100", headers={"X-User-Role": "admin"}).json["data"]
    assert listed["total"] >= 1
    assert admin.get(f"/profiles/{hers['id']}", headers={"X-User-Role": "user"}).status == 404


def test_listing_is_paginated(profiles: ServiceClient) -> None:
    me = profiles.as_user(someone())
    ids = [create(me, display_name=f"p{i}")["id"] for i in range(5)]
    first = me.get("/profiles?page=1&page_size=2").json["data"]
    last = me.get("/profiles?page=3&page_size=2").json["data"]
    assert (first["total"], first["page"], first["page_size"]) == (5, 1, 2)
    assert [p["id"] for p in first["items"]] == ids[:2]
    assert [p["id"] for p in last["items"]] == ids[4:]
    beyond = me.get("/profiles?page=4&page_size=2")
    assert beyond.envelope == (200, 203, "DataFound")
    assert beyond.json["data"]["items"] == []
    default = me.get("/profiles").json["data"]
    assert default["page_size"] == 20


def test_health_and_docs(profiles: ServiceClient) -> None:
    assert profiles.get("/healthz").envelope == (200, 203, "DataFound")
    assert profiles.get("/docs").status == 200
    schema = profiles.get("/openapi.json").json
    upload = schema["paths"]["/profiles/{profile_id}/avatar"]["put"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    # The real answers: the envelope, the validation shape (400, and 413/415 for uploads),
    # the User header and role header the gateway sets; never FastAPI's unused 422.
    assert "'422'" not in str(schema)
    assert upload["responses"]["415"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ValidationFailure"
    )
    listing = schema["paths"]["/profiles"]["get"]
    headers = [(p["name"], p["required"]) for p in listing["parameters"] if p["in"] == "header"]
    assert headers == [("User", True), ("X-User-Role", False)]


def test_a_deleted_profiles_id_is_not_given_again(profiles: ServiceClient) -> None:
    # Before: SQLite handed the newest deleted profile's id to the next profile.
    me = profiles.as_user(someone())
    first = create(me)["id"]
    assert me.delete(f"/profiles/{first}").status == 200
    assert create(me)["id"] > first
