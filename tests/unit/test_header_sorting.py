"""sort_headers' memo of header names: the same answers as without it, in any letter case,
and bounded whatever names a client invents."""

from __future__ import annotations

from propylon.http.request import (
    DROPPED,
    KEPT,
    REMEMBERED_NAMES,
    HeaderRules,
    Request,
    sort_headers,
)


def rules() -> HeaderRules:
    return HeaderRules(frozenset({b"user", b"x-user-role"}), b"x-request-id")


def sorted_request(rules: HeaderRules, headers: list[tuple[bytes, bytes]]) -> Request:
    request = Request(b"GET", b"/", True, True)
    sort_headers(request, headers, rules)
    return request


def test_every_spelling_of_a_stripped_name_is_dropped_each_time() -> None:
    shared = rules()
    headers = [
        (b"Host", b"a.test"),
        (b"User", b"admin"),
        (b"USER", b"admin"),
        (b"uSeR", b"admin"),
        (b"X_User", b"admin"),
        (b"Accept", b"*/*"),
        (b"Authorization", b"Bearer t"),
        (b"X-Request-Id", b"abc"),
    ]
    for _ in range(3):  # the second and third pass answer from the memo
        request = sorted_request(shared, headers)
        assert request.kept == [b"Accept: */*", b"Authorization: Bearer t"]
        assert request.authorization == [b"Bearer t"]
        assert request.request_id == b"abc"
        assert request.host == b"a.test"
    assert shared.kinds[b"uSeR"] == DROPPED
    assert shared.kinds[b"Accept"] == KEPT


def test_invented_names_cannot_grow_the_memo() -> None:
    shared = rules()
    for batch in range(5):
        headers = [(b"Host", b"a.test")]
        headers += [(b"X-Invented-%d-%d" % (batch, i), b"v") for i in range(1000)]
        request = sorted_request(shared, headers)
        assert len(request.kept) == 1000
        assert len(shared.kinds) <= REMEMBERED_NAMES
    # Still right after starting over.
    assert sorted_request(shared, [(b"Host", b"a"), (b"USER", b"x")]).kept == []
