"""Identity: creating users, the seed's validation shape, admin-only routes, framework errors."""

from __future__ import annotations

import uuid

from tests.services.client import ServiceClient
from tests.services.conftest import ADMIN

PASSWORD = "a long enough password"


def fresh_name() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def make_user(identity: ServiceClient) -> str:
    name = fresh_name()
    assert identity.post("/auth/users", {"username": name, "password": PASSWORD}).status == 201
    return name


def test_seed_validation_example_has_the_exact_shape(identity: ServiceClient) -> None:
    reply = identity.post("/auth/token", {"username": "", "password": ""})
    assert reply.status == 400
    # Each error once in `message` (the seed's doubling was its validator running twice).
    assert reply.json == {
        "code": 403,
        "codemessage": "ValidationError",
        "message": "Validation failed: \n -- Username: 'Username' must not be empty. "
        "Severity: Error\n -- Password: 'Password' must not be empty. Severity: Error",
        "data": {
            "Username": ["'Username' must not be empty."],
            "Password": ["'Password' must not be empty."],
        },
    }


def test_missing_fields_read_the_same_as_empty_ones(identity: ServiceClient) -> None:
    empty = identity.post("/auth/token", {"username": "", "password": ""})
    missing = identity.post("/auth/token", {})
    assert missing.status == 400
    assert missing.json == empty.json


def test_create_user_answers_data_created(identity: ServiceClient) -> None:
    name = fresh_name()
    reply = identity.post("/auth/users", {"username": name, "password": PASSWORD})
    assert reply.envelope == (201, 204, "DataCreated")
    data = reply.json["data"]
    assert (data["username"], data["role"]) == (name, "user")
    assert data["created_at"].endswith("+00:00")
    assert set(data) == {"username", "role", "created_at"}  # never the hash


def test_duplicate_username_is_not_unique(identity: ServiceClient) -> None:
    name = make_user(identity)
    reply = identity.post("/auth/users", {"username": name, "password": "another password"})
    assert reply.envelope == (409, 408, "NotUnique")
    assert "data" not in reply.json


def test_username_and_password_rules(identity: ServiceClient) -> None:
    reply = identity.post("/auth/users", {"username": "Bad Name", "password": "short"})
    assert reply.envelope == (400, 403, "ValidationError")
    assert reply.json["data"] == {
        "Username": [
            "'Username' must be 3 to 32 characters: lower-case letters, digits, '.', '_' or "
            "'-', starting with a letter or digit."
        ],
        "Password": [
            "The length of 'Password' must be at least 8 characters. You entered 5 characters."
        ],
    }


def test_password_may_not_equal_username(identity: ServiceClient) -> None:
    reply = identity.post("/auth/users", {"username": "samesame", "password": "samesame"})
    assert reply.status == 400
    assert reply.json["data"] == {"Password": ["'Password' must not be the same as 'Username'."]}


def test_wrong_types_and_bad_json_are_validation_errors(identity: ServiceClient) -> None:
    typed = identity.post("/auth/users", {"username": 12345, "password": PASSWORD})
    assert typed.status == 400
    assert typed.json["data"] == {"Username": ["'Username' must be a string."]}
    broken = identity.post(
        "/auth/users", body=b'{"username": ', headers={"Content-Type": "application/json"}
    )
    assert broken.envelope == (400, 403, "ValidationError")
    assert broken.json["data"] == {"Body": ["'Body' must be valid JSON."]}


def test_unknown_path_and_wrong_method_use_the_envelope(identity: ServiceClient) -> None:
    # The same codes the gateway answers with for the same thing (docs/error-codes.md).
    assert identity.get("/no/such/thing").envelope == (404, 421, "RouteNotFound")
    wrong = identity.call("DELETE", "/auth/token")
    assert wrong.envelope == (405, 422, "MethodNotAllowed")
    assert wrong.headers["Allow"] == "POST"


def test_health_and_docs(identity: ServiceClient) -> None:
    assert identity.get("/healthz").json == {
        "code": 203,
        "codemessage": "DataFound",
        "message": "Service is ready.",
        "data": {"status": "ready"},
    }
    assert identity.get("/docs").status == 200
    assert "/auth/token/refresh" in identity.get("/openapi.json").json["paths"]


def test_user_listing_needs_an_identity(identity: ServiceClient) -> None:
    assert identity.get("/auth/users").envelope == (401, 405, "Unauthorized")


def test_user_listing_is_refused_to_a_user(identity: ServiceClient) -> None:
    user = make_user(identity)
    assert identity.as_user(user).get("/auth/users").envelope == (403, 409, "Restricted")
    # A name that is not a user at all is no admin either.
    assert identity.as_user("ghost-admin").get("/auth/users").status == 403


def test_admin_lists_users_page_by_page(identity: ServiceClient) -> None:
    make_user(identity)
    admin = identity.as_user(ADMIN)
    first = admin.get("/auth/users?page=1&page_size=1")
    assert first.envelope == (200, 203, "DataFound")
    data = first.json["data"]
    assert (data["page"], data["page_size"], len(data["items"])) == (1, 1, 1)
    assert data["total"] >= 2
    second = admin.get("/auth/users?page=2&page_size=1").json["data"]["items"]
    assert second[0]["username"] != data["items"][0]["username"]
    too_big = admin.get("/auth/users?page_size=101")
    assert too_big.json["data"] == {"PageSize": ["'PageSize' must be less than or equal to '100'."]}


def test_admin_changes_a_role_and_the_service_honours_it(identity: ServiceClient) -> None:
    user = make_user(identity)
    refused = identity.as_user(user).patch(f"/auth/users/{user}/role", {"role": "admin"})
    assert refused.envelope == (403, 409, "Restricted")

    changed = identity.as_user(ADMIN).patch(f"/auth/users/{user}/role", {"role": "admin"})
    assert changed.envelope == (200, 206, "DataUpdated")
    assert changed.json["data"]["role"] == "admin"
    assert identity.as_user(user).get("/auth/users").status == 200


def test_role_change_errors(identity: ServiceClient) -> None:
    admin = identity.as_user(ADMIN)
    missing = admin.patch("/auth/users/nobody-here/role", {"role": "admin"})
    assert missing.envelope == (404, 406, "ObjectNotFound")
    invalid = admin.patch(f"/auth/users/{ADMIN}/role", {"role": "root"})
    assert invalid.status == 400
    assert invalid.json["data"] == {"Role": ["'Role' must be one of: 'user' or 'admin'."]}
