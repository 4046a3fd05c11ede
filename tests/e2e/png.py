"""A valid PNG of an exact size, made of noise so nothing on the way can compress it."""

from __future__ import annotations

import random
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_OVERHEAD = 12  # length, type, CRC
_WIDTH = 1024


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def noise_png(size: int, seed: int = 0) -> bytes:
    """A grey-scale PNG of exactly ``size`` bytes (at least ~64 KiB) that decoders accept.

    Random pixels stored uncompressed (zlib level 0) fill most of it; a ``tEXt`` comment
    pads it to the exact size.
    """
    noise = random.Random(seed)
    height = max(1, (size - 64 * 1024) // (_WIDTH + 1))
    rows = b"".join(b"\x00" + noise.randbytes(_WIDTH) for _ in range(height))
    header = struct.pack(">IIBBBBB", _WIDTH, height, 8, 0, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 0))
    end = _chunk(b"IEND", b"")
    keyword = b"Comment\x00"
    padding = size - len(SIGNATURE) - len(body) - len(end) - _CHUNK_OVERHEAD - len(keyword)
    if padding < 0:
        raise ValueError(f"{size} bytes is too small for a noise PNG")
    comment = _chunk(b"tEXt", keyword + b"x" * padding)
    image = SIGNATURE + body + comment + end
    assert len(image) == size
    return image
