"""The bookkeeping of fire-and-forget jobs: queues, concurrency, backoff. Pure.

No Trio, no clock, no randomness of its own: ``backoff_delay`` takes the
random draw ``u`` as an argument, so the same inputs give the same delays
and tests know the exact virtual time of every retry.

Queues: each named queue runs at most ``limit`` jobs at once; more wait in
the queue's FIFO, at most ``max_pending`` of them (a new job past that is
refused: ``QueueFull``). A job that failed and waits for its retry holds no
slot; when its time comes it joins the back of its queue, and is never
refused (it was accepted once).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Mapping

import attrs
from beamlet.actors.lowlevel import check_number

__all__ = ["JobQueues", "QueueFull", "QueueStats", "backoff_delay", "check_queues"]


class QueueFull(Exception):
    """A queue already holds ``max_pending`` waiting jobs."""


@attrs.frozen
class QueueStats:
    """The counts of one job queue.

    Attributes:
        limit: the most jobs it runs at once.
        running: jobs running now.
        pending: jobs waiting for a slot (new ones and retries whose time came).
        scheduled: failed jobs waiting for their retry's time.
        succeeded: jobs that returned (counted once each).
        failed: jobs that failed their last attempt.
        retries: retries scheduled (a job retried twice counts two).
    """

    limit: int
    running: int = 0
    pending: int = 0
    scheduled: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0


def check_queues(queues: object) -> dict[str, int]:
    """The queues as ``{name: limit}``; ``TypeError``/``ValueError`` naming a bad one."""
    if not isinstance(queues, Mapping) or not queues:
        raise TypeError(f"queues must be a non-empty dict of name -> concurrency, not {queues!r}")
    checked: dict[str, int] = {}
    for name, limit in queues.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"a job queue's name must be a non-empty str, not {name!r}")
        check_number(limit, f"job queue {name!r}: concurrency", minimum=1, integer=True)
        checked[name] = limit  # type: ignore[assignment]
    return checked


def backoff_delay(attempt: int, base: float, cap: float, jitter: float, u: float) -> float:
    """Seconds to wait before retrying a job whose attempt number ``attempt`` failed.

    Exponential: ``base * 2 ** (attempt - 1)`` (``base``, ``2 * base``,
    ``4 * base``, ...), at most ``cap``, then plus up to ``jitter`` of itself
    (Oban adds 0-10 %): ``delay * (1 + jitter * u)`` with ``u`` drawn
    uniformly in [0, 1) by the caller. The jitter spreads out retries of
    jobs that failed together, so that they do not all hit a recovering
    service at the same instant.

    Args:
        attempt: the attempt that failed, 1 for the first.
        base: the first delay, seconds >= 0.
        cap: the largest delay before jitter.
        jitter: the largest fraction added (0 for none).
        u: a number in [0, 1).
    """
    exponent = min(attempt - 1, 1000)  # 2 ** 1000 is far past any cap; no overflow
    delay = min(cap, base * math.ldexp(1.0, exponent)) if base > 0 else 0.0
    return delay * (1.0 + jitter * u)


class _Queue:
    __slots__ = ("limit", "running", "waiting")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self.waiting: deque[Hashable] = deque()


class JobQueues:
    """Which jobs run, which wait, per queue, and the counts.

    Jobs are opaque ids. The runner calls ``submit`` for a new job,
    ``scheduled``/``due`` around a retry's wait, and ``done`` when a running
    job ends; each returns the jobs to start now.

    Args:
        limits: ``{queue name: most jobs running at once}``.
        max_pending: the most jobs waiting for a slot in one queue.
    """

    def __init__(self, limits: Mapping[str, int], max_pending: int) -> None:
        self.max_pending = max_pending
        self._queues = {name: _Queue(limit) for name, limit in check_queues(limits).items()}
        self._stats = {
            name: {"scheduled": 0, "succeeded": 0, "failed": 0, "retries": 0}
            for name in self._queues
        }

    def names(self) -> list[str]:
        """The queues' names."""
        return list(self._queues)

    def __contains__(self, queue: object) -> bool:
        return queue in self._queues

    def submit(self, queue: str, job: Hashable) -> list[Hashable]:
        """A new job: start it now (returned) or queue it.

        Raises:
            KeyError: no such queue.
            QueueFull: the queue already holds ``max_pending`` waiting jobs.
        """
        q = self._queues[queue]
        if q.running < q.limit:
            q.running += 1
            return [job]
        if len(q.waiting) >= self.max_pending:
            raise QueueFull(queue)
        q.waiting.append(job)
        return []

    def done(self, queue: str, job: Hashable, outcome: str) -> list[Hashable]:
        """A running job ended: ``"succeeded"``, ``"failed"`` (for good) or
        ``"retry"`` (its retry is scheduled). Returns the job that takes its slot."""
        q = self._queues[queue]
        q.running -= 1
        stats = self._stats[queue]
        if outcome == "retry":
            stats["retries"] += 1
            stats["scheduled"] += 1
        else:
            stats[outcome] += 1
        if q.waiting:
            q.running += 1
            return [q.waiting.popleft()]
        return []

    def due(self, queue: str, job: Hashable) -> list[Hashable]:
        """A failed job's retry time has come: start it now, or at the back of the queue."""
        q = self._queues[queue]
        self._stats[queue]["scheduled"] -= 1
        if q.running < q.limit:
            q.running += 1
            return [job]
        q.waiting.append(job)
        return []

    def stats(self) -> dict[str, QueueStats]:
        """Each queue's ``QueueStats``."""
        return {
            name: QueueStats(
                limit=q.limit, running=q.running, pending=len(q.waiting), **self._stats[name]
            )
            for name, q in self._queues.items()
        }

    def idle(self) -> bool:
        """Whether no job runs, waits or is scheduled for a retry."""
        return all(
            q.running == 0 and not q.waiting and self._stats[name]["scheduled"] == 0
            for name, q in self._queues.items()
        )
