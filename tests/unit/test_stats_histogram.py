"""The latency histogram: bounded, accurate to its stated error, and exact to merge."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propylon.stats.histogram import (
    HIGHEST,
    LOG_BUCKETS,
    LOWEST,
    OVERFLOW_EDGE,
    RELATIVE_ERROR,
    LatencyHistogram,
)

latencies = st.floats(min_value=LOWEST, max_value=HIGHEST, allow_nan=False)
any_latency = st.floats(min_value=0.0, max_value=2 * HIGHEST, allow_nan=False)
quantiles = st.one_of(st.sampled_from([0.5, 0.9, 0.99, 1.0]), st.floats(0.0, 1.0))


def exact_percentile(samples: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least q of all samples at or below it."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def histogram_of(samples: list[float]) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for s in samples:
        histogram.record(s)
    return histogram


def test_layout_matches_its_promise() -> None:
    assert 100 <= LOG_BUCKETS <= 200
    assert RELATIVE_ERROR < 0.05
    assert OVERFLOW_EDGE >= HIGHEST


def test_empty_histogram_has_no_percentiles() -> None:
    histogram = LatencyHistogram()
    assert histogram.count == 0
    assert histogram.percentile(0.5) is None
    assert histogram.percentile(0.99) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(latencies, min_size=1, max_size=400), quantiles)
def test_percentile_within_bucket_error_of_exact(samples: list[float], q: float) -> None:
    estimate = histogram_of(samples).percentile(q)
    exact = exact_percentile(samples, q)
    assert estimate is not None
    assert abs(estimate - exact) <= exact * RELATIVE_ERROR * (1 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, LOWEST, exclude_max=True), min_size=1, max_size=50), quantiles)
def test_sub_50us_latencies_are_within_50us(samples: list[float], q: float) -> None:
    estimate = histogram_of(samples).percentile(q)
    assert estimate is not None
    assert abs(estimate - exact_percentile(samples, q)) < LOWEST


def test_percentiles_of_a_known_spread() -> None:
    # 1..1000 ms: p50 is 500 ms, p90 900 ms, p99 990 ms, each within the bucket error.
    histogram = histogram_of([ms / 1000 for ms in range(1, 1001)])
    for q, exact in ((0.5, 0.5), (0.9, 0.9), (0.99, 0.99)):
        estimate = histogram.percentile(q)
        assert estimate is not None
        assert estimate == pytest.approx(exact, rel=RELATIVE_ERROR)
    assert histogram.count == 1000
    assert histogram.max == 1.0


def test_overflow_reports_the_largest_value_seen() -> None:
    histogram = histogram_of([0.010] * 90 + [75.0] * 5 + [300.0] * 5)
    assert histogram.percentile(0.99) == 300.0
    assert histogram.percentile(0.5) == pytest.approx(0.010, rel=RELATIVE_ERROR)


def test_memory_is_fixed_whatever_is_recorded() -> None:
    histogram = histogram_of([i * 1e-5 for i in range(20_000)] + [math.inf, -1.0])
    assert len(histogram.counts) == LOG_BUCKETS + 2
    assert histogram.count == 20_002
    # An infinite sample must not make the histogram unserialisable.
    assert orjson.loads(orjson.dumps(histogram.to_dict()))["max"] == OVERFLOW_EDGE


@given(st.lists(any_latency, max_size=200))
def test_dict_round_trip_through_json(samples: list[float]) -> None:
    histogram = histogram_of(samples)
    back = LatencyHistogram.from_dict(orjson.loads(orjson.dumps(histogram.to_dict())))
    assert back.counts == histogram.counts
    assert back.max == histogram.max
    for q in (0.5, 0.9, 0.99):
        assert back.percentile(q) == histogram.percentile(q)


@given(
    st.lists(any_latency, max_size=100),
    st.lists(any_latency, max_size=100),
    st.lists(any_latency, max_size=100),
)
def test_merge_is_associative_and_equals_recording_everything(
    a: list[float], b: list[float], c: list[float]
) -> None:
    left = histogram_of(a)
    ab = histogram_of(b)
    left.merge(ab)
    left.merge(histogram_of(c))
    right_tail = histogram_of(b)
    right_tail.merge(histogram_of(c))
    right = histogram_of(a)
    right.merge(right_tail)
    together = histogram_of(a + b + c)
    assert left.to_dict() == right.to_dict() == together.to_dict()


def test_from_dict_refuses_another_layout_or_bad_buckets() -> None:
    data = histogram_of([0.01]).to_dict()
    with pytest.raises(ValueError, match="scheme"):
        LatencyHistogram.from_dict({**data, "scheme": "linear/10"})
    with pytest.raises(ValueError, match="bucket"):
        LatencyHistogram.from_dict({**data, "buckets": [[LOG_BUCKETS + 2, 1]]})
    with pytest.raises(ValueError, match="bucket"):
        LatencyHistogram.from_dict({**data, "buckets": [[3, -1]]})
