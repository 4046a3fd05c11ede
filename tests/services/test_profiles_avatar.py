"""Profiles: avatar upload streamed to disk, checked by size and by content, served back."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from profiles.app import create_app
from profiles.settings import ProfilesSettings
from servicekit.serving import ServiceThread

from tests.services.client import Reply, ServiceClient, multipart
from tests.services.conftest import profiles_settings
from tests.services.test_profiles import create, someone

PNG = b"\x89PNG\r\n\x1a\n"


def upload(
    client: ServiceClient, profile_id: int, content: bytes, claimed: str = "image/png"
) -> Reply:
    body, content_type = multipart("file", "avatar.png", content, claimed)
    return client.call(
        "PUT", f"/profiles/{profile_id}/avatar", body=body, headers={"Content-Type": content_type}
    )


def media_files(settings: ProfilesSettings) -> list[str]:
    return sorted(p.name for p in settings.media_dir.iterdir())


def test_a_5_mib_avatar_arrives_intact(
    profiles_service: tuple[ServiceClient, ProfilesSettings],
) -> None:
    profiles, _settings = profiles_service
    me = profiles.as_user(someone())
    profile = create(me)
    content = PNG + os.urandom(5 * 1024 * 1024 - len(PNG))
    digest = hashlib.sha256(content).hexdigest()

    reply = upload(me, profile["id"], content)
    assert reply.json == {
        "code": 207,
        "codemessage": "FileUploaded",
        "message": "Avatar uploaded.",
        "data": {"content_type": "image/png", "size": len(content), "sha256": digest},
    }
    assert reply.status == 200

    served = me.get(f"/profiles/{profile['id']}/avatar")
    assert served.status == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert hashlib.sha256(served.body).hexdigest() == digest
    avatar = me.get(f"/profiles/{profile['id']}").json["data"]["avatar"]
    assert avatar == {"content_type": "image/png", "size": len(content), "sha256": digest}


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    ],
)
def test_type_comes_from_the_bytes(profiles: ServiceClient, head: bytes, expected: str) -> None:
    me = profiles.as_user(someone())
    profile = create(me)
    # The client's claimed type is ignored both ways.
    reply = upload(me, profile["id"], head + b"\x00" * 64, claimed="text/plain")
    assert reply.json["data"]["content_type"] == expected
    assert me.get(f"/profiles/{profile['id']}/avatar").headers["Content-Type"] == expected


def test_a_non_image_is_refused_whatever_it_claims(
    profiles_service: tuple[ServiceClient, ProfilesSettings],
) -> None:
    profiles, settings = profiles_service
    me = profiles.as_user(someone())
    profile = create(me)
    before = media_files(settings)
    reply = upload(me, profile["id"], b"<html><script>alert(1)</script></html>")
    assert reply.envelope == (415, 403, "ValidationError")
    assert reply.json["data"] == {"File": ["'File' must be a PNG, JPEG, GIF or WebP image."]}
    assert media_files(settings) == before
    assert me.get(f"/profiles/{profile['id']}/avatar").status == 404


def test_body_must_be_multipart_with_a_file_field(profiles: ServiceClient) -> None:
    me = profiles.as_user(someone())
    profile = create(me)
    raw = me.call(
        "PUT",
        f"/profiles/{profile['id']}/avatar",
        body=PNG + b"data",
        headers={"Content-Type": "image/png"},
    )
    assert raw.status == 415
    assert raw.json["data"] == {"File": ["'File' must be sent as multipart/form-data."]}
    body, content_type = multipart("picture", "a.png", PNG + b"data", "image/png")
    wrong_field = me.call(
        "PUT",
        f"/profiles/{profile['id']}/avatar",
        body=body,
        headers={"Content-Type": content_type},
    )
    assert wrong_field.status == 400
    assert wrong_field.json["data"] == {"File": ["'File' must not be empty."]}


def test_avatars_follow_profile_ownership(profiles: ServiceClient) -> None:
    alice, bob = profiles.as_user(someone()), profiles.as_user(someone())
    hers = create(alice)
    assert upload(bob, hers["id"], PNG + b"x").envelope == (404, 406, "ObjectNotFound")
    assert upload(alice, hers["id"], PNG + b"x").status == 200
    assert bob.get(f"/profiles/{hers['id']}/avatar").status == 404


def test_replacing_and_deleting_clean_up_files(
    profiles_service: tuple[ServiceClient, ProfilesSettings],
) -> None:
    profiles, settings = profiles_service
    me = profiles.as_user(someone())
    profile = create(me)
    before = set(media_files(settings))
    upload(me, profile["id"], PNG + b"first")
    upload(me, profile["id"], PNG + b"second")
    added = set(media_files(settings)) - before
    assert len(added) == 1
    assert me.get(f"/profiles/{profile['id']}/avatar").body == PNG + b"second"
    me.delete(f"/profiles/{profile['id']}")
    assert set(media_files(settings)) == before


@pytest.fixture
def small_limit_service(tmp_path: Path) -> Iterator[tuple[ServiceClient, ProfilesSettings]]:
    settings = profiles_settings(
        f"sqlite:///{tmp_path / 'p.db'}",
        tmp_path / "media",
        max_avatar_bytes=64 * 1024,
        trust_role_header=False,
    )
    with ServiceThread(create_app(settings)) as service:
        yield ServiceClient(service.url), settings


def test_an_oversized_avatar_is_refused(
    small_limit_service: tuple[ServiceClient, ProfilesSettings],
) -> None:
    profiles, settings = small_limit_service
    me = profiles.as_user(someone())
    profile = create(me)
    just_fits = upload(me, profile["id"], PNG + b"\x00" * (64 * 1024 - len(PNG)))
    assert just_fits.status == 200
    too_big = upload(me, profile["id"], PNG + b"\x00" * (64 * 1024))
    assert too_big.envelope == (413, 403, "ValidationError")
    assert too_big.json["data"] == {"File": ["'File' must be at most 65536 bytes."]}
    # Declared far too large up front: refused from the Content-Length alone.
    huge = upload(me, profile["id"], PNG + b"\x00" * (512 * 1024))
    assert huge.status == 413
    assert not [name for name in media_files(settings) if name.startswith(".upload-")]


def test_an_oversized_chunked_avatar_is_refused(
    small_limit_service: tuple[ServiceClient, ProfilesSettings],
) -> None:
    profiles, settings = small_limit_service
    me = profiles.as_user(someone())
    profile = create(me)
    body, content_type = multipart("file", "a.png", PNG + b"\x00" * (200 * 1024), "image/png")
    chunks = iter([body[i : i + 16384] for i in range(0, len(body), 16384)])
    reply = me.call(
        "PUT",
        f"/profiles/{profile['id']}/avatar",
        body=chunks,
        headers={"Content-Type": content_type},
    )
    assert reply.status == 413
    assert media_files(settings) == []


def test_role_header_is_ignored_unless_trusted(
    small_limit_service: tuple[ServiceClient, ProfilesSettings],
) -> None:
    profiles, _settings = small_limit_service
    hers = create(profiles.as_user(someone()))
    intruder = profiles.as_user(someone())
    reply = intruder.get(f"/profiles/{hers['id']}", headers={"X-User-Role": "admin"})
    assert reply.status == 404
    listing = intruder.get("/profiles", headers={"X-User-Role": "admin"}).json["data"]
    assert listing["total"] == 0


def test_concurrent_uploads_leave_exactly_the_referenced_file(
    profiles_service: tuple[ServiceClient, ProfilesSettings],
) -> None:
    # Before: 8 concurrent uploads to one profile left 3 files, only 1 of them referenced.
    profiles, settings = profiles_service
    me = profiles.as_user(someone())
    profile = create(me)
    barrier = threading.Barrier(8, timeout=30)

    def one(index: int) -> int:
        barrier.wait()
        return upload(me, profile["id"], PNG + bytes([index]) * 4096).status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(8), timeout=120))
    assert set(statuses) <= {200, 409}, statuses
    assert 200 in statuses
    mine = [n for n in media_files(settings) if n.startswith(f"{profile['id']}-")]
    assert len(mine) == 1, mine
    served = me.get(f"/profiles/{profile['id']}/avatar")
    assert served.status == 200
    stored = (settings.media_dir / mine[0]).read_bytes()
    assert served.body == stored
    assert not [n for n in media_files(settings) if n.startswith(".upload-")]
