"""The two algorithms as pure transitions, without I/O: Ocelot's RateLimitingTests (Count,
RetryAfter, ProcessRequest) ported to FixedWindow, and GCRA's guarantees."""

from __future__ import annotations

import pytest

from propylon.config.durations import dotnet_number, parse
from propylon.ratelimit import gcra
from propylon.ratelimit.fixed_window import FixedWindow
from propylon.ratelimit.gcra import Gcra

NOW = 1_700_000_000.0


def record(
    started: float, total: float, exceeded: float = 0.0, expires: float = NOW + 60
) -> list[float]:
    return [expires, started, total, exceeded]


def test_no_entry_starts_counting() -> None:
    rec = [0.0, 0.0, 0.0, 0.0]
    total, started, retry, _now = FixedWindow(3, 1.0, 1.0).apply([rec], NOW)
    assert (total, started, retry) == (1.0, NOW, 0.0)
    assert rec[0] == NOW + 1.0 + 1.0 + 1.0  # period + wait + 1 s, as Ocelot's expiry


def test_an_entry_in_its_window_is_incremented() -> None:
    rec = record(NOW, 2)
    total, started, _retry, _ = FixedWindow(3, 1.0, 1.0).apply([rec], NOW)
    assert (total, started) == (3.0, NOW)


def test_exceeding_records_the_moment_and_refuses() -> None:
    rec = record(NOW - 0.5, 3)
    total, _started, retry, _ = FixedWindow(3, 1.0, 0.0).apply([rec], NOW)
    assert total == 4.0 and rec[3] == NOW
    assert retry == pytest.approx(0.5)  # RetryAfter_DoNotWait_RetryAfterTheHalfOfPeriod


def test_retry_after_a_quarter_of_the_wait() -> None:
    # RetryAfter_ExceedingInWaitingWindow_RetryAfterTheQuarterOfWaitPeriod
    window = FixedWindow(3, 1.0, 1.0)
    assert window.retry_after(NOW - 0.5 - 0.75, 4, NOW - 0.75, NOW) == pytest.approx(0.25)
    # RetryAfter_Exceeding_WaitingPeriodElapsed_NoNeedToRetry
    assert window.retry_after(NOW - 2, 4, NOW - 1, NOW) == -1.0
    # RetryAfter_NoQuotaExceeding_NoNeedToRetry
    assert window.retry_after(NOW - 0.5, 2, 0.0, NOW) == 0.0


def test_the_end_of_the_wait_is_inclusive_then_a_new_window_opens() -> None:
    # Count_PeriodIsElapsedAndWaitPeriodIsElapsed_StartedNewCountingPeriod
    window = FixedWindow(3, 1.0, 1.0)
    at_edge = record(NOW - 2, 3, NOW - 1)
    total, started, _retry, _ = window.apply([at_edge], NOW)
    # at the very moment the wait ends the old counter still counts, and is then reset
    assert (total, started) == (1.0, NOW)
    later = record(NOW - 2, 3, NOW - 1)
    total, started, _retry, _ = window.apply([later], NOW + 0.001)
    assert (total, started) == (1.0, NOW + 0.001)


def test_quota_exceeded_then_wait_elapsed_restarts_counting() -> None:
    # ProcessRequest_QuotaExceededAndWaitPeriodElapsed_StartedCountingViaResettingCounter
    window = FixedWindow(2, 3.0, 2.0)
    rec = record(NOW - 3.0, 2)
    total, started, _retry, _ = window.apply([rec], NOW)
    assert (total, started, rec[3]) == (3.0, NOW - 3.0, NOW)
    total, started, _retry, _ = window.apply([rec], NOW + 2.0)
    assert (total, started, rec[3]) == (1.0, NOW + 2.0, 0.0)
    assert rec[0] - (NOW + 2.0) == 6.0  # expiry: 3 s + 2 s + 1 s


def test_a_wait_longer_than_the_period_does_not_refuse_within_the_limit() -> None:
    # Ocelot bug 1590: 100 per 1 s with a 30 s wait; 20 requests in the first second pass.
    window = FixedWindow(100, 1.0, 30.0)
    rec = [0.0, 0.0, 0.0, 0.0]
    for i in range(20):
        total, started, retry, _ = window.apply([rec], NOW + i * 0.04)
        assert (total, started, retry, rec[3]) == (i + 1, NOW, 0.0, 0.0)


def test_limit_zero_refuses_everything() -> None:
    window = FixedWindow(0, 1.0, 0.0)
    rec = [0.0, 0.0, 0.0, 0.0]
    assert [window.apply([rec], NOW + i * 0.1)[0] > 0 for i in range(5)] == [True] * 5


@pytest.mark.parametrize(
    ("text", "seconds", "unit"),
    [
        ("1ms", 0.001, True),
        ("1s", 1, True),
        ("1m", 60, True),
        ("1h", 3600, True),
        ("1d", 86400, True),
        ("2.ms", 0.002, True),
        (".4ms", 0.0004, True),
        ("123.456ms", 0.123456, True),
        ("1", 0.001, False),
        ("78.999", 0.078999, False),
        ("1.5m", 90, True),
        ("1S", 1, True),
    ],
)
def test_timespans_parse_as_ocelot_reads_them(text: str, seconds: float, unit: bool) -> None:
    amount, with_unit = parse(text)
    assert amount == pytest.approx(seconds) and with_unit is unit


@pytest.mark.parametrize("text", ["1x", "2unknown", "x-bla-bla", "-1ms", "", "1 s s"])
def test_timespans_ocelot_would_fail_on_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.5, "0.5"), (0.2471, "0.2471"), (1000.0, "1000"), (-1.0, "-1")],
)
def test_numbers_are_written_as_dotnet_writes_doubles(value: float, text: str) -> None:
    assert dotnet_number(value) == text


def test_gcra_admits_a_burst_of_the_limit_then_one_per_interval() -> None:
    limiter = Gcra([10], [1.0])
    rec = [0.0, 0.0, 0.0, 0.0]
    admitted = [limiter.apply([rec], NOW)[0] for _ in range(11)]
    assert admitted == [1.0] * 10 + [0.0]
    assert limiter.apply([rec], NOW + 0.1)[0] == 1.0  # one interval later: one more
    assert limiter.apply([rec], NOW + 0.1)[0] == 0.0


def test_gcra_bounds_bursts_by_the_limit_and_the_rate_by_limit_per_period() -> None:
    limiter = Gcra([5], [1.0])
    rec = [0.0, 0.0, 0.0, 0.0]
    times = [NOW + i * 0.013 for i in range(400)]  # a client hammering for 5.2 s
    admitted = [t for t in times if limiter.apply([rec], t)[0] == 1.0]
    # never more than the limit at once; at most limit + elapsed * rate over any stretch
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 0.1) <= 5
        for span in (1.0, 2.0, 4.0):
            inside = sum(1 for t in admitted if start <= t < start + span)
            assert inside <= 5 + span * 5
    assert len(admitted) == 5 + int((times[-1] - NOW) / 0.2)


def test_several_limits_decide_together_and_a_refusal_counts_against_none() -> None:
    limiter = Gcra([2, 3], [10.0, 3600.0])
    short, long = [0.0] * 4, [0.0] * 4
    assert [limiter.apply([short, long], NOW)[0] for _ in range(3)] == [1.0, 1.0, 0.0]
    used_long = long[1] - NOW
    assert gcra.remaining(3, 3600.0, used_long) == 1  # the refused request took nothing


@pytest.mark.parametrize(
    ("used", "left", "reset"),
    [(0.0, 10, 0), (0.1, 9, 1), (1.0, 0, 1), (0.95, 0, 1), (0.5, 5, 1)],
)
def test_remaining_and_reset_of_a_bucket(used: float, left: int, reset: int) -> None:
    assert gcra.remaining(10, 1.0, used) == left
    assert gcra.next_unit(10, 1.0, used, left) == reset
