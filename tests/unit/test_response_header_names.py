"""Response header names are lowered through a bounded memo (engine/exchange.py)."""

from __future__ import annotations

from propylon.engine.exchange import MAX_LOWER_NAMES, lowered_name


def test_names_are_lowered_and_unique_names_cannot_grow_the_memo() -> None:
    assert lowered_name(b"Content-Length") == b"content-length"
    assert lowered_name(b"Content-Length") == b"content-length"  # remembered
    assert lowered_name(b"X-UPPER_and_lower") == b"x-upper_and_lower"
    # An upstream that invents a name per response: the memo starts over, never grows.
    for n in range(3 * MAX_LOWER_NAMES):
        assert lowered_name(b"X-Name-%d" % n) == b"x-name-%d" % n
    from propylon.engine import exchange

    assert len(exchange._LOWER_NAMES) <= MAX_LOWER_NAMES
