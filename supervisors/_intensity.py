"""Restart intensity: when a supervisor gives up (S13). Pure: no clock, no Trio.

OTP's rule (``supervisor:add_restart/3``)::

    Threshold = Now - Period,
    Restarts1 = [R || R <- Restarts0, R >= Threshold],
    [Now | Restarts1]                 % then: length =< Intensity -> restart, else give up

Restated: *a restart is allowed while the restarts within the last
``max_seconds`` — this one included, and one exactly ``max_seconds`` ago
included — number at most ``max_restarts``; the restart that makes them
``max_restarts + 1`` escalates.* So ``max_restarts=0`` escalates on the first
crash and ``max_restarts=3`` on the fourth crash inside the window.

Granularity: OTP reads the clock in whole seconds, so two restarts up to
``Period + 1`` seconds apart may share a window. beamlet keeps exact float
seconds (the supervisor passes ``trio.current_time()``): a restart counts for
exactly ``max_seconds`` seconds. With whole-second timestamps both agree.
"""

from __future__ import annotations

from collections import deque

from beamlet.actors.lowlevel import check_number

__all__ = ["RestartIntensity", "check_intensity"]


def check_intensity(max_restarts: object, max_seconds: object) -> None:
    """Validate supervisor flags (S2).

    Raises:
        TypeError / ValueError: ``max_restarts`` is not an int >= 0, or
            ``max_seconds`` is not a finite number > 0.
    """
    check_number(max_restarts, "max_restarts", integer=True)
    check_number(max_seconds, "max_seconds", strict=True, finite=True, unit="seconds")


class RestartIntensity:
    """The restart history of one supervisor.

    Example::

        intensity = RestartIntensity(max_restarts=3, max_seconds=5.0)
        assert intensity.add_restart(0.0)      # 1st restart
        ...
        if not intensity.add_restart(now):     # the supervisor gives up
            ...

    Only the last ``max_restarts + 1`` timestamps are kept: once that many fall
    in the window the answer is "give up" whatever came before, so memory stays
    bounded by the intensity, not by the age of the supervisor.

    Args:
        max_restarts: restarts allowed within the window (an int >= 0).
        max_seconds: the window, in seconds (> 0).
    """

    __slots__ = ("_restarts", "max_restarts", "max_seconds")

    def __init__(self, max_restarts: int, max_seconds: float) -> None:
        check_intensity(max_restarts, max_seconds)
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._restarts: deque[float] = deque(maxlen=max_restarts + 1)

    def __repr__(self) -> str:
        return (
            f"RestartIntensity(max_restarts={self.max_restarts}, "
            f"max_seconds={self.max_seconds}, restarts={list(self._restarts)})"
        )

    @property
    def restarts(self) -> tuple[float, ...]:
        """The timestamps still in the window at the last ``add_restart``, oldest first."""
        return tuple(self._restarts)

    def add_restart(self, now: float) -> bool:
        """Record a restart at time ``now``; return whether it is allowed.

        Args:
            now: the current time in seconds; never less than a previous ``now``.

        Returns:
            True to restart; False when the restarts within ``max_seconds``
            (this one included) exceed ``max_restarts``: the supervisor must
            give up (escalate).
        """
        restarts = self._restarts
        threshold = now - self.max_seconds
        while restarts and restarts[0] < threshold:
            restarts.popleft()
        restarts.append(now)
        return len(restarts) <= self.max_restarts
