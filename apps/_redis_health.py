"""The health of a Redis connection: up or down, and what to log about it. Pure.

No Trio, no clock: the connection passes ``now`` (``trio.current_time()``).
"""

from __future__ import annotations

import math

import attrs

__all__ = ["HealthState", "RateLimited", "RedisHealth"]


@attrs.frozen
class RedisHealth:
    """A snapshot of a connection's health, for stats and logs.

    Attributes:
        up: Redis answers.
        state: ``"up"`` or ``"down"``.
        address: which Redis.
        last_error: the last connection error, in words (None before any).
        down_since: ``trio.current_time()`` when it went down (None while up).
        reconnects: how many times it came back after being down.
        outages: how many times it went down.
        failed_attempts: reconnection attempts that failed in the current outage.
    """

    up: bool
    state: str
    address: str
    last_error: str | None
    down_since: float | None
    reconnects: int
    outages: int
    failed_attempts: int


@attrs.define
class HealthState:
    """Up or down, and what to say about it. Pure: the caller passes ``now``.

    Transitions return what the caller must log, so that each outage gives
    exactly one "down" line and one "back" line, and at most one "still down"
    line per ``log_period`` in between.
    """

    address: str
    log_period: float = 30.0
    up: bool = False
    last_error: str | None = None
    down_since: float | None = None
    reconnects: int = 0
    outages: int = 0
    failed_attempts: int = 0
    _connected_once: bool = False
    _last_log: float = -math.inf

    def fail(self, error: str, now: float) -> bool:
        """A call or an attempt failed with ``error``. True if Redis just went down (log it)."""
        self.last_error = error
        if self.up or (not self._connected_once and self.down_since is None):
            self.up = False
            self.down_since = now
            self.outages += 1
            self.failed_attempts = 0
            self._last_log = now
            return True
        return False

    def attempt_failed(self, error: str, now: float) -> bool:
        """A reconnection attempt failed while down. True if a "still down" line is due.

        At most one line is due per ``log_period`` (the "down" line counts as
        the first). While up it does nothing and returns False: call ``fail``.
        """
        if self.up:
            return False
        self.last_error = error
        self.failed_attempts += 1
        if now - self._last_log >= self.log_period:
            self._last_log = now
            return True
        return False

    def recover(self, now: float) -> float | None:
        """Redis answered. The outage's length if it just came back (log it), else None.

        The first success of a connection that was never up is no comeback:
        it returns None and does not count as a reconnection.
        """
        if self.up:
            return None
        self.up = True
        since, self.down_since = self.down_since, None
        if not self._connected_once:
            self._connected_once = True
            if since is None:
                return None
        self.reconnects += 1
        return now - since if since is not None else 0.0

    def snapshot(self) -> RedisHealth:
        """The state as a frozen ``RedisHealth``."""
        return RedisHealth(
            up=self.up,
            state="up" if self.up else "down",
            address=self.address,
            last_error=self.last_error,
            down_since=self.down_since,
            reconnects=self.reconnects,
            outages=self.outages,
            failed_attempts=self.failed_attempts,
        )


class RateLimited:
    """A log line at most once per ``period`` seconds, with a count of what was held back."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._last = -math.inf
        self._held = 0

    def due(self, now: float) -> int | None:
        """None if a line was logged too recently (counted), else how many were held back."""
        if now - self._last < self.period:
            self._held += 1
            return None
        self._last = now
        held, self._held = self._held, 0
        return held
