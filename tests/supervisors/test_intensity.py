"""Restart intensity (S13): the pure rule, against a transcription of OTP's add_restart."""

from __future__ import annotations

import math

import pytest
from beamlet.supervisors._intensity import RestartIntensity, check_intensity
from hypothesis import given, strategies as st


def otp_add_restart(restarts: list[float], now: float, period: float) -> list[float]:
    """supervisor.erl: Threshold = Now - Period; takewhile(R >= Threshold); [Now | ...]."""
    threshold = now - period
    kept: list[float] = []
    for r in restarts:  # newest first
        if not r >= threshold:
            break
        kept.append(r)
    return [now, *kept]


def otp_decisions(times: list[float], intensity: int, period: float) -> list[bool]:
    restarts: list[float] = []
    decisions = []
    for now in times:
        restarts = otp_add_restart(restarts, now, period)
        decisions.append(len(restarts) <= intensity)
    return decisions


def our_decisions(times: list[float], intensity: int, period: float) -> list[bool]:
    state = RestartIntensity(intensity, period)
    return [state.add_restart(now) for now in times]


increments = st.lists(
    st.one_of(st.floats(min_value=0, max_value=20, allow_nan=False), st.integers(0, 10).map(float)),
    max_size=60,
)


def cumulative(steps: list[float]) -> list[float]:
    times, now = [], 0.0
    for step in steps:
        now += step
        times.append(now)
    return times


@given(increments, st.integers(0, 8), st.floats(min_value=0.001, max_value=30))
def test_S13_matches_otp_add_restart_with_exact_seconds(
    steps: list[float], intensity: int, period: float
) -> None:
    times = cumulative(steps)
    assert our_decisions(times, intensity, period) == otp_decisions(times, intensity, period)


@given(st.lists(st.integers(0, 4), max_size=60), st.integers(0, 8), st.integers(1, 10))
def test_S13_whole_second_clocks_agree_with_otp(
    steps: list[int], intensity: int, period: int
) -> None:
    # With a whole-second clock (what OTP reads), beamlet and OTP decide alike.
    times = [float(t) for t in cumulative([float(s) for s in steps])]
    assert our_decisions(times, intensity, period) == otp_decisions(times, intensity, period)


@given(increments, st.integers(0, 8), st.floats(min_value=0.001, max_value=30))
def test_S13_sliding_window_statement(steps: list[float], intensity: int, period: float) -> None:
    # "restarts within the last max_seconds (this one included) > max_restarts escalates"
    times = cumulative(steps)
    decisions = our_decisions(times, intensity, period)
    for i, now in enumerate(times):
        in_window = sum(1 for t in times[: i + 1] if t >= now - period)
        if i == 0 or all(decisions[:i]):
            assert decisions[i] == (in_window <= intensity)


def test_S13_intensity_zero_escalates_on_first_crash() -> None:
    assert RestartIntensity(0, 5.0).add_restart(0.0) is False


def test_S13_fourth_crash_in_window_escalates() -> None:
    state = RestartIntensity(3, 5.0)
    assert [state.add_restart(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]


def test_S13_erlang_default_one_in_five_escalates_on_second_crash() -> None:
    state = RestartIntensity(1, 5.0)
    assert [state.add_restart(t) for t in (0.0, 4.9)] == [True, False]


def test_S13_window_boundary_is_inclusive() -> None:
    # A restart exactly max_seconds ago still counts; a hair older does not.
    state = RestartIntensity(1, 5.0)
    assert state.add_restart(0.0)
    assert not state.add_restart(5.0)
    state = RestartIntensity(1, 5.0)
    assert state.add_restart(0.0)
    assert state.add_restart(math.nextafter(5.0, math.inf))


def test_S13_multiple_restarts_spaced_wider_than_the_period() -> None:
    state = RestartIntensity(1, 1.0)
    assert all(state.add_restart(t * 1.01) for t in range(100))


def test_memory_is_bounded_by_the_intensity() -> None:
    state = RestartIntensity(3, 1000.0)
    for t in range(100):
        state.add_restart(float(t))
    assert len(state.restarts) == 4


@pytest.mark.parametrize(
    ("max_restarts", "max_seconds", "error"),
    [
        ("infinity", 5, TypeError),
        (True, 5, TypeError),
        (1.5, 5, TypeError),
        (-1, 5, ValueError),
        (3, 0, ValueError),
        (3, -1, ValueError),
        (3, math.inf, ValueError),
        (3, math.nan, ValueError),
        (3, "infinity", TypeError),
    ],
)
def test_S2_invalid_flags(max_restarts: object, max_seconds: object, error: type) -> None:
    with pytest.raises(error) as info:
        check_intensity(max_restarts, max_seconds)
    assert repr(max_restarts if "max_restarts" in str(info.value) else max_seconds) in str(
        info.value
    )
