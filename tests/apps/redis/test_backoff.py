"""The pure backoff: exponential caps, equal jitter, never zero, never past the maximum."""

from __future__ import annotations

import pytest
from beamlet.apps._backoff import Backoff
from hypothesis import given, strategies as st

initials = st.floats(min_value=1e-3, max_value=10.0)
factors = st.floats(min_value=1.0, max_value=1e4)
multipliers = st.floats(min_value=1.01, max_value=10.0)
attempts = st.integers(min_value=1, max_value=10_000)
randoms = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(initials, factors, multipliers, attempts, randoms)
def test_delay_is_between_half_the_cap_and_the_cap(
    initial: float, factor: float, multiplier: float, attempt: int, random: float
) -> None:
    backoff = Backoff(initial, initial * factor, multiplier)
    cap = backoff.cap(attempt)
    delay = backoff.delay(attempt, random)
    assert initial / 2 <= cap / 2 <= delay <= cap <= backoff.maximum


@given(initials, factors, multipliers, attempts)
def test_caps_grow_until_the_maximum_and_stay(
    initial: float, factor: float, multiplier: float, attempt: int
) -> None:
    backoff = Backoff(initial, initial * factor, multiplier)
    assert backoff.cap(attempt) <= backoff.cap(attempt + 1)
    assert backoff.cap(1) == initial
    if backoff.cap(attempt) < backoff.maximum:
        assert backoff.cap(attempt + 1) == pytest.approx(
            min(backoff.maximum, backoff.cap(attempt) * multiplier)
        )


def test_exact_values() -> None:
    backoff = Backoff(0.1, 5.0)
    assert [backoff.cap(n) for n in range(1, 9)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    )
    assert backoff.delay(3, 0.0) == pytest.approx(0.2)
    assert backoff.delay(3, 0.5) == pytest.approx(0.3)
    assert backoff.cap(10**9) == 5.0  # no overflow


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="initial must be"):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError, match="maximum must be >= initial"):
        Backoff(2.0, 1.0)
    with pytest.raises(ValueError, match="multiplier"):
        Backoff(1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="attempt"):
        Backoff().delay(0, 0.5)
    with pytest.raises(TypeError, match="attempt"):
        Backoff().delay(1.5, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="random"):
        Backoff().delay(1, 1.0)
    with pytest.raises(TypeError, match="random"):
        Backoff().delay(1, "x")  # type: ignore[arg-type]
