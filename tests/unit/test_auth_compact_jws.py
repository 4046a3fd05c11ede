"""Splitting a compact JWS and parsing its header: what is a token and what is refused."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from propylon.auth.compact_jws import (
    _HEADERS,
    HEADER_CACHE_SIZE,
    MAX_TOKEN_BYTES,
    decode_segment,
    parse_compact_jws,
)
from propylon.auth.failures import AuthFailure


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def token(header: object, payload: bytes = b'{"sub":"a"}', signature: bytes = b"sig") -> bytes:
    return b".".join([b64(orjson.dumps(header)), b64(payload), b64(signature)])


HS = {"alg": "HS256", "typ": "JWT"}


def test_a_token_is_split_into_what_the_signature_covers_and_the_signature() -> None:
    raw = token(HS, signature=b"\x00\xffsig")
    parsed = parse_compact_jws(raw)
    assert parsed.header == HS
    assert parsed.signing_input == raw.rsplit(b".", 1)[0]
    assert parsed.signature == b"\x00\xffsig"
    assert parsed.claims() == {"sub": "a"}


def test_padded_segments_are_accepted_as_some_issuers_send_them() -> None:
    header = base64.urlsafe_b64encode(orjson.dumps({"alg": "HS256", "kid": "k"}))
    payload = base64.urlsafe_b64encode(b'{"sub":"abc"}')
    assert header.endswith(b"=") and payload.endswith(b"=")
    parsed = parse_compact_jws(header + b"." + payload + b"." + b64(b"s"))
    assert parsed.claims() == {"sub": "abc"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not-a-token", "malformed token"),
        (token(HS).rsplit(b".", 1)[0] + b".", "malformed token"),  # alg none: empty signature
        (token(HS).rsplit(b".", 1)[0], "malformed token"),
        (token(HS) + b".a.b", "malformed token"),  # JWE compact form
        (token(HS) + b", Bearer x.y.z", "malformed token"),
        (b" " + token(HS), "malformed token"),
        (token(HS) + b"\x00", "malformed token"),
        (token(HS).replace(b"J", b"+", 1), "malformed token"),  # base64, not base64url
        (token(HS, payload=b"x" * MAX_TOKEN_BYTES), "malformed token"),
        (token(["alg", "HS256"]), "malformed token"),  # header not an object
        (b"bm90IGpzb24." + b64(b"{}") + b".c2ln", "malformed token"),  # header not JSON
        (token({"alg": "HS256", "kid": 7}), "kid is not a string"),
        (token({"alg": "HS256", "crit": ["exp"], "exp": 1}), "unsupported critical header"),
        (token({"alg": "HS256", "crit": ["b64"], "b64": True}), "unsupported critical header"),
        (token({"alg": "HS256", "b64": False}), "unsupported critical header"),
        (b64(orjson.dumps(HS)) + b"..c2ln", "malformed token"),
    ],
)
def test_what_is_not_a_signed_compact_jws_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(AuthFailure) as refused:
        parse_compact_jws(raw)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "payload",
    [
        b"[1]",
        b"not json",
        b'{"exp": NaN}',
        b'{"sub": "\xff"}',
        # The same refusals on the exact parser that long integers take.
        b'{"exp": NaN, "n": 18446744073709551616}',
        b'{"exp": Infinity, "n": 18446744073709551616}',
        b'{"sub": "\xff", "n": 18446744073709551616}',
        b"[18446744073709551616]",
    ],
)
def test_a_payload_that_is_not_a_json_object_is_refused(payload: bytes) -> None:
    with pytest.raises(AuthFailure, match="malformed token"):
        parse_compact_jws(token(HS, payload=payload)).claims()


@pytest.mark.parametrize(
    "segment",
    [
        b"QQ",  # "A"
        b"QR",  # also "A" if the unused low bits were ignored
        b"QQ=",  # padding that does not complete a quantum
        b"QQ===",
        b"Q",  # a length no encoding produces
        b"",
    ],
)
def test_only_canonical_base64url_decodes(segment: bytes) -> None:
    if segment == b"QQ":
        assert decode_segment(segment) == b"A"
        assert decode_segment(b"QQ==") == b"A"
        return
    with pytest.raises(AuthFailure):
        decode_segment(segment)


@given(st.binary(max_size=200))
def test_every_encoding_round_trips(data: bytes) -> None:
    encoded = b64(data)
    if encoded:
        assert decode_segment(encoded) == data


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="))
def test_a_segment_decodes_exactly_when_it_is_the_canonical_encoding_of_its_bytes(
    text: str,
) -> None:
    segment = text.encode()
    stripped = segment.rstrip(b"=")
    try:
        expected: bytes | None = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    except ValueError:
        expected = None
    padding_ok = segment == stripped or (
        len(segment) % 4 == 0 and len(segment) - len(stripped) <= 2
    )
    if expected is None or not stripped or not padding_ok or b64(expected) != stripped:
        with pytest.raises(AuthFailure):
            decode_segment(segment)
    else:
        assert decode_segment(segment) == expected


@pytest.mark.parametrize(
    "number", [18446744073709551616, 18446744073709551617, -9223372036854775809, 2**200]
)
def test_integers_beyond_64_bits_are_read_exactly(number: int) -> None:
    payload = b'{"sub":"svc","uid":%d,"nested":{"n":[%d]}}' % (number, number)
    claims = parse_compact_jws(token(HS, payload=payload)).claims()
    assert claims == {"sub": "svc", "uid": number, "nested": {"n": [number]}}


def test_a_refused_header_is_refused_every_time_not_remembered() -> None:
    raw = token({"alg": "HS256", "crit": ["exp"]})
    for _ in range(2):
        with pytest.raises(AuthFailure):
            parse_compact_jws(raw)


def test_a_remembered_header_is_shared_read_only_and_the_rest_is_per_token() -> None:
    first = parse_compact_jws(token(HS, b'{"sub":"a"}', b"one"))
    second = parse_compact_jws(token(HS, b'{"sub":"b"}', b"two"))
    assert second.header is first.header  # parsed once
    with pytest.raises(TypeError):
        first.header["alg"] = "none"  # type: ignore[index]
    assert (second.signature, second.claims()) == (b"two", {"sub": "b"})


def test_the_header_memory_is_bounded() -> None:
    for i in range(HEADER_CACHE_SIZE + 50):
        parse_compact_jws(token({"alg": "HS256", "kid": f"key-{i}"}))
    assert 0 < len(_HEADERS) <= HEADER_CACHE_SIZE
