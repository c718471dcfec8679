"""Tick bookkeeping, with explicit times."""

from __future__ import annotations

import pytest
from beamlet.cluster._ticks import TickState


def test_idle_connection_ticks_every_quarter_and_times_out_after_ticktime() -> None:
    ticks = TickState.start(ticktime=4.0, now=100.0)
    assert ticks.interval == 1.0
    assert ticks.next_deadline() == 101.0
    assert ticks.handle_timer(100.5) is None
    assert ticks.handle_timer(101.0) == "tick"  # recorded as sent at 101
    assert ticks.next_deadline() == 102.0
    assert ticks.handle_timer(101.5) is None
    assert ticks.handle_timer(102.0) == "tick"
    assert ticks.handle_timer(103.0) == "tick"
    assert ticks.next_deadline() == 104.0  # min(103 + 1, 100 + 4)
    assert ticks.handle_timer(104.0) == "check"  # read what waits first
    assert ticks.handle_timer(104.0) == "timeout"  # nothing did
    assert ticks.handle_timer(105.0) == "timeout"


def test_traffic_postpones_ticks_and_timeouts() -> None:
    ticks = TickState.start(ticktime=4.0, now=0.0)
    ticks.on_sent(0.9)
    assert ticks.handle_timer(1.0) is None
    assert ticks.next_deadline() == 1.9
    ticks.on_received(3.5)
    assert ticks.handle_timer(4.0) == "tick"
    assert ticks.next_deadline() == 5.0
    assert ticks.handle_timer(7.4) == "tick"
    assert ticks.handle_timer(7.5) == "check"
    assert ticks.handle_timer(7.5) == "timeout"


def test_bytes_waiting_after_a_pause_keep_the_peer_up() -> None:
    """A paused node's timers expire before it reads the ticks that came meanwhile."""
    ticks = TickState.start(ticktime=8.0, now=0.0)
    ticks.on_received(1.0)
    assert ticks.handle_timer(9.5) == "check"  # woke from a 7 s pause
    ticks.on_received(9.5)  # the peer's ticks were waiting on the socket
    assert ticks.handle_timer(9.5) == "tick"
    assert ticks.handle_timer(17.5) == "check"  # a new silence is checked again
    assert ticks.handle_timer(17.6) == "timeout"


def test_times_only_move_forward() -> None:
    ticks = TickState.start(ticktime=10.0, now=50.0)
    ticks.on_received(40.0)
    ticks.on_sent(45.0)
    assert (ticks.last_received, ticks.last_sent) == (50.0, 50.0)


@pytest.mark.parametrize(
    ("ticktime", "intensity"), [(0, 4), (-1.0, 4), (True, 4), ("15", 4), (4.0, 0), (4.0, 1.5)]
)
def test_arguments_are_checked(ticktime: object, intensity: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        TickState.start(ticktime, 0.0, intensity=intensity)  # type: ignore[arg-type]
