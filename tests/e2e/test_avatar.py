"""A 5 MiB avatar goes up and comes back through the gateway byte for byte."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import AsyncIterator

import aiohttp

from tests.e2e.api import GatewayApi
from tests.e2e.png import SIGNATURE, noise_png

AVATAR_BYTES = 5 * 1024 * 1024


async def test_five_mib_avatar_round_trips_intact(api: GatewayApi) -> None:
    owner = await api.sign_up("painter")
    profile = await api.create_profile(owner, "Painter")
    path = f"/profiles/{profile['id']}/avatar"
    image = noise_png(AVATAR_BYTES, seed=7)
    form = aiohttp.FormData()
    form.add_field("file", image, filename="avatar.png", content_type="image/png")

    uploaded = await api.call("PUT", path, token=owner.access_token, data=form)

    assert uploaded.status == 200 and uploaded.codemessage == "FileUploaded", uploaded
    assert uploaded.data == {
        "content_type": "image/png",
        "size": AVATAR_BYTES,
        "sha256": hashlib.sha256(image).hexdigest(),
    }

    downloaded = await api.call("GET", path, token=owner.access_token)
    assert downloaded.status == 200, downloaded.status
    assert downloaded.headers["Content-Type"] == "image/png"
    assert downloaded.headers["X-Content-Type-Options"] == "nosniff"
    assert len(downloaded.body) == AVATAR_BYTES
    assert downloaded.body == image

    described = await api.call("GET", f"/profiles/{profile['id']}", token=owner.access_token)
    assert described.data["avatar"] == uploaded.data


def test_the_test_avatar_is_a_well_formed_png() -> None:
    image = noise_png(AVATAR_BYTES, seed=7)
    assert len(image) == AVATAR_BYTES and image.startswith(SIGNATURE)
    offset, kinds, idat = len(SIGNATURE), [], b""
    while offset < len(image):
        (length,) = struct.unpack(">I", image[offset : offset + 4])
        kind = image[offset + 4 : offset + 8]
        data = image[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", image[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        kinds.append(kind)
        idat += data if kind == b"IDAT" else b""
        offset += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", image[16:24])
    assert len(zlib.decompress(idat)) == height * (width + 1)


async def test_chunked_avatar_upload_streams_through(api: GatewayApi) -> None:
    owner = await api.sign_up("streamer")
    profile = await api.create_profile(owner, "Streamer")
    path = f"/profiles/{profile['id']}/avatar"
    image = noise_png(AVATAR_BYTES, seed=11)
    boundary = "e2e-boundary-5b1c"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="avatar.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        for start in range(0, len(image), 256 * 1024):
            yield image[start : start + 256 * 1024]
        yield tail

    uploaded = await api.call(
        "PUT",
        path,
        token=owner.access_token,
        data=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert uploaded.status == 200 and uploaded.codemessage == "FileUploaded", uploaded
    assert uploaded.data["sha256"] == hashlib.sha256(image).hexdigest()
    downloaded = await api.call("GET", path, token=owner.access_token)
    assert downloaded.body == image
