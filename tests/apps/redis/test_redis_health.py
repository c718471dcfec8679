"""The pure health state of a Redis connection: one line down, one line back, rate-limited in between."""

from __future__ import annotations

from beamlet.apps._redis_health import HealthState, RateLimited
from hypothesis import given, strategies as st


def test_first_contact_that_succeeds_is_no_comeback() -> None:
    state = HealthState("h:1")
    assert state.recover(0.0) is None
    snap = state.snapshot()
    assert snap.up and snap.state == "up" and snap.reconnects == 0 and snap.outages == 0


def test_first_contact_that_fails_is_an_outage() -> None:
    state = HealthState("h:1")
    assert state.fail("refused", 1.0) is True
    assert state.fail("refused", 1.5) is False
    snap = state.snapshot()
    assert not snap.up and snap.down_since == 1.0 and snap.outages == 1
    assert state.recover(4.0) == 3.0
    assert state.snapshot().reconnects == 1


def test_one_down_and_one_back_per_outage() -> None:
    state = HealthState("h:1", log_period=10.0)
    state.recover(0.0)
    assert state.fail("reset", 5.0) is True
    assert state.fail("reset again", 5.1) is False  # other callers failing meanwhile
    assert state.attempt_failed("refused", 6.0) is False  # the down line was at 5.0
    assert state.attempt_failed("refused", 14.9) is False
    assert state.attempt_failed("refused", 15.0) is True  # still down: one line per period
    assert state.attempt_failed("refused", 16.0) is False
    snap = state.snapshot()
    assert snap.failed_attempts == 4 and snap.last_error == "refused"
    assert state.recover(20.0) == 15.0
    assert state.recover(21.0) is None
    assert state.snapshot().reconnects == 1 and state.snapshot().down_since is None


@given(st.lists(st.tuples(st.sampled_from(["fail", "attempt", "recover"]), st.floats(0, 5))))
def test_lines_match_transitions(events: list[tuple[str, float]]) -> None:
    """Any sequence: a "down" line exactly at each up -> down (or a failed first contact),
    a "back" line exactly at each down -> up, and the counters agree."""
    state = HealthState("h:1", log_period=1.0)
    now = 0.0
    up, down, connected = False, False, False  # the model
    downs = backs = 0
    for kind, step in events:
        now += step
        if kind == "fail":
            went_down = state.fail("x", now)
            assert went_down == (up or (not connected and not down))
            if went_down:
                downs += 1
                up, down = False, True
        elif kind == "attempt":
            state.attempt_failed("x", now)  # never a transition
        else:
            back = state.recover(now)
            assert (back is not None) == down
            if back is not None:
                assert back >= 0
                backs += 1
            up, down, connected = True, False, True
        snap = state.snapshot()
        assert snap.up == up
        assert (snap.down_since is not None) == down
        assert snap.outages == downs and snap.reconnects == backs


def test_rate_limited_counts_what_it_holds_back() -> None:
    limiter = RateLimited(10.0)
    assert limiter.due(0.0) == 0
    assert limiter.due(1.0) is None
    assert limiter.due(2.0) is None
    assert limiter.due(10.0) == 2
    assert limiter.due(25.0) == 0
