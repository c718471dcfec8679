"""Bounds on what other nodes, and strangers, can make a node do: pure bookkeeping.

No Trio, no clock: every method takes ``now``. ``TokenBucket`` spaces out the
dials that gossip and discovery ask for; ``FailureLog`` turns a flood of
failed handshakes into one line per source and a periodic count;
``OldestFirst`` keeps the connections not authenticated yet under a cap,
giving up the oldest first.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

__all__ = [
    "DIAL_BURST",
    "DIAL_RATE",
    "FAILURE_LOG_PERIOD",
    "MAX_BACKGROUND_DIALS",
    "MAX_FAILURE_SOURCES",
    "MAX_KNOWN_NODES",
    "MAX_UNAUTHENTICATED",
    "FailureLog",
    "OldestFirst",
    "TokenBucket",
]

#: The most node addresses a node keeps (from gossip, seeds, connections).
MAX_KNOWN_NODES = 1024
#: Dials per second that gossip, seeds and discovery may start (``DIAL_BURST`` at once).
DIAL_RATE = 10.0
DIAL_BURST = 10
#: Dials started by gossip, seeds and discovery that may be under way at once.
MAX_BACKGROUND_DIALS = 8
#: Incoming connections that may be waiting to authenticate at once (the default
#: of ``start_distribution(max_unauthenticated=...)``).
MAX_UNAUTHENTICATED = 64
#: Seconds between the summaries of failures not logged one by one.
FAILURE_LOG_PERIOD = 60.0
#: Sources (peer addresses) whose failures are counted apart; the others together.
MAX_FAILURE_SOURCES = 256


#: Rounding slack: a bucket this close to a whole token has it.
_SLACK = 1e-9


class TokenBucket:
    """At most ``rate`` events per second on average, ``burst`` at once.

    Args:
        rate: tokens added per second (> 0).
        burst: the most tokens kept (>= 1).
        now: the time it starts, full.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if not rate > 0 or burst < 1:
            raise ValueError(f"TokenBucket needs rate > 0 and burst >= 1, not {rate!r}, {burst!r}")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one at ``now``; say whether there was."""
        self._refill(now)
        if self._tokens >= 1.0 - _SLACK:
            self._tokens = max(0.0, self._tokens - 1.0)
            return True
        return False

    def next_time(self, now: float) -> float:
        """When the next token is there (``now`` if it already is)."""
        self._refill(now)
        if self._tokens >= 1.0 - _SLACK:
            return now
        return now + (1.0 - self._tokens) / self.rate + _SLACK


class FailureLog:
    """Which failures to log one by one, and the counts of the others.

    The first failure from a source is logged in full (``note`` says True);
    the next ones are only counted, and ``flush`` (called every ``period``)
    returns, per source, how many there were since the last summary. A
    source quiet for a whole period is forgotten: its next failure is logged
    in full again. Past ``max_sources`` sources, the failures of new ones are
    counted together (source None).

    Args:
        period: seconds between two ``flush``.
        max_sources: sources counted apart.
    """

    def __init__(
        self, period: float = FAILURE_LOG_PERIOD, max_sources: int = MAX_FAILURE_SOURCES
    ) -> None:
        self.period = period
        self.max_sources = max_sources
        self._sources: dict[Hashable, list[Any]] = {}  # source -> [since, count]
        self._others = 0
        self._others_since: float | None = None

    def __len__(self) -> int:
        return len(self._sources)

    def note(self, source: Hashable, now: float) -> bool:
        """Count one failure from ``source`` at ``now``; True: log this one in full."""
        entry = self._sources.get(source)
        if entry is not None:
            entry[1] += 1
            return False
        if len(self._sources) >= self.max_sources:
            if not self._others:
                self._others_since = now
            self._others += 1
            return False
        self._sources[source] = [now, 0]
        return True

    def flush(self, now: float) -> list[tuple[Hashable | None, int, float]]:
        """Return ``(source, failures not logged, over seconds)`` since the last summary.

        Sources with nothing to report that were quiet for ``period`` are forgotten.
        """
        summaries: list[tuple[Hashable | None, int, float]] = []
        for source, entry in list(self._sources.items()):
            since, count = entry
            if count:
                summaries.append((source, count, now - since))
                entry[0], entry[1] = now, 0
            elif now - since >= self.period:
                del self._sources[source]
        if self._others:
            assert self._others_since is not None
            summaries.append((None, self._others, now - self._others_since))
            self._others = 0
        return summaries


class OldestFirst:
    """A capped set of things, in arrival order; past the cap, the oldest is given up.

    Args:
        limit: the most things kept (>= 1).
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"OldestFirst needs a limit >= 1, not {limit!r}")
        self.limit = limit
        self._items: dict[Hashable, None] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: Hashable) -> bool:
        return item in self._items

    def add(self, item: Hashable) -> Hashable | None:
        """Keep ``item``; return the oldest one to give up if that goes past the limit."""
        self._items[item] = None
        if len(self._items) > self.limit:
            oldest = next(iter(self._items))
            del self._items[oldest]
            return oldest
        return None

    def pop_oldest(self) -> Hashable | None:
        """Forget and return the oldest item (None if there is none)."""
        if not self._items:
            return None
        oldest = next(iter(self._items))
        del self._items[oldest]
        return oldest

    def discard(self, item: Hashable) -> None:
        """Forget ``item`` (it authenticated, or went away)."""
        self._items.pop(item, None)
