"""The pure bounds: a token bucket, aggregated failure logs, a capped oldest-first set."""

from __future__ import annotations

import pytest
from beamlet.cluster._limits import FailureLog, OldestFirst, TokenBucket
from hypothesis import given, settings, strategies as st


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.5, 100),
    burst=st.integers(1, 20),
    steps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)
def test_a_token_bucket_never_allows_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst, 0.0)
    now = taken = 0
    for step in steps:
        now += step
        if bucket.take(now):
            taken += 1
        assert taken <= burst + rate * now + 1e-9
        nxt = bucket.next_time(now)
        assert nxt >= now
        if nxt == now:
            assert bucket.take(now)
            taken += 1


def test_a_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(2.0, 2, 0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.next_time(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) and not bucket.take(0.5)
    with pytest.raises(ValueError):
        TokenBucket(0, 1, 0.0)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.floats(0, 50)), max_size=300
    )
)
def test_a_failure_log_accounts_for_every_failure_once(events: list[tuple[str, float]]) -> None:
    log = FailureLog(period=10.0, max_sources=3)
    now = 0.0
    logged = summarized = 0
    for source, step in events:
        if now + step >= (now // 10 + 1) * 10:  # a period ended meanwhile
            summarized += sum(count for _s, count, _t in log.flush(now + step))
        now += step
        if log.note(source, now):
            logged += 1
        assert len(log) <= 3
    summarized += sum(count for _s, count, _t in log.flush(now))
    assert logged + summarized == len(events)
    assert logged <= len(events)


def test_a_failure_log_logs_the_first_then_counts_then_forgets_a_quiet_source() -> None:
    log = FailureLog(period=60.0, max_sources=1)
    assert log.note("10.0.0.1", 0.0)
    assert not any(log.note("10.0.0.1", t) for t in range(1, 1200))
    assert not log.note("10.0.0.2", 5.0)  # past max_sources: counted with the others
    assert log.flush(60.0) == [("10.0.0.1", 1199, 60.0), (None, 1, 55.0)]
    assert log.flush(120.0) == []  # quiet for a period: forgotten
    assert log.note("10.0.0.1", 121.0)


def test_oldest_first_gives_up_the_oldest_past_its_limit() -> None:
    kept = OldestFirst(2)
    assert kept.add("a") is None and kept.add("b") is None
    assert kept.add("c") == "a" and "a" not in kept and len(kept) == 2
    kept.discard("b")
    assert kept.add("d") is None
    assert kept.pop_oldest() == "c" and kept.pop_oldest() == "d" and kept.pop_oldest() is None
    with pytest.raises(ValueError):
        OldestFirst(0)
