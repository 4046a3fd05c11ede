"""Receiving one file field of a multipart body, streamed to disk as it arrives.

The body is parsed chunk by chunk (python-multipart's push parser), so memory use does not
grow with the file, and the size limit is enforced while receiving rather than afterwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from servicekit.validation import single_field_failure
from starlette.requests import Request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# Room for the multipart framing around the file (boundaries, part headers).
_FRAMING_ALLOWANCE = 64 * 1024
# After a refusal the rest of the body is read and dropped up to this much, so the client
# sees the answer instead of a reset connection; beyond it the connection is abandoned.
_DRAIN_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    size: int
    sha256: str
    head: bytes


class _FilePart:
    """Parser callbacks that pick out the part named `field` and buffer its bytes."""

    def __init__(self, field: str, max_bytes: int, head_bytes: int) -> None:
        self.field = field.encode()
        self.max_bytes = max_bytes
        self.head_bytes = head_bytes
        self.pending: list[bytes] = []
        self.size = 0
        self.head = b""
        self.digest = hashlib.sha256()
        self.found = False
        self.too_large = False
        self._in_target = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    def on_part_begin(self) -> None:
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _kind, params = parse_options_header(self._disposition)
        self._in_target = not self.found and params.get(b"name") == self.field
        self.found = self.found or self._in_target

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_target or self.too_large:
            return
        piece = data[start:end]
        self.size += len(piece)
        if self.size > self.max_bytes:
            self.too_large = True
            return
        if len(self.head) < self.head_bytes:
            self.head += piece[: self.head_bytes - len(self.head)]
        self.digest.update(piece)
        self.pending.append(piece)

    def on_part_end(self) -> None:
        self._in_target = False


def _too_large(max_bytes: int) -> Exception:
    return single_field_failure("File", f"'File' must be at most {max_bytes} bytes.", 413)


async def _drain(request: Request) -> None:
    drained = 0
    async for chunk in request.stream():
        drained += len(chunk)
        if drained > _DRAIN_LIMIT:
            return


async def receive_file(
    request: Request, field: str, destination: Path, max_bytes: int, head_bytes: int
) -> ReceivedFile:
    """Write the multipart part named `field` to `destination`; refuse bad or large bodies."""
    kind, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise single_field_failure(
            "File", "'File' must be sent as multipart/form-data.", status=415
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + _FRAMING_ALLOWANCE:
        await _drain(request)
        raise _too_large(max_bytes)

    part = _FilePart(field, max_bytes, head_bytes)
    callbacks: MultipartCallbacks = {
        "on_part_begin": part.on_part_begin,
        "on_header_field": part.on_header_field,
        "on_header_value": part.on_header_value,
        "on_header_end": part.on_header_end,
        "on_headers_finished": part.on_headers_finished,
        "on_part_data": part.on_part_data,
        "on_part_end": part.on_part_end,
    }
    parser = MultipartParser(boundary, callbacks, max_size=max_bytes + _FRAMING_ALLOWANCE)
    try:
        async with await anyio.open_file(destination, "wb") as out:
            drained = 0
            async for chunk in request.stream():
                if part.too_large:
                    # Keep reading (and dropping) a bounded amount; see _DRAIN_LIMIT.
                    drained += len(chunk)
                    if drained > _DRAIN_LIMIT:
                        break
                    continue
                parser.write(chunk)
                for piece in part.pending:
                    await out.write(piece)
                part.pending.clear()
        if part.too_large:
            raise _too_large(max_bytes)
        parser.finalize()
    except MultipartParseError:
        raise single_field_failure("File", "'File' is not a well-formed multipart body.") from None
    if not part.found or part.size == 0:
        raise single_field_failure("File", "'File' must not be empty.")
    return ReceivedFile(size=part.size, sha256=part.digest.hexdigest(), head=part.head)
