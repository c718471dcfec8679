"""Exceptions of beamlet.apps.pool."""

from __future__ import annotations

from typing import Any

import trio
from beamlet.actors import NoSuchNameError

__all__ = [
    "JobQueueFullError",
    "PoolFullError",
    "PoolTimeoutError",
    "UnknownJobsError",
    "UnknownPoolError",
    "UnknownQueueError",
    "UnpicklableError",
]


class UnknownPoolError(NoSuchNameError):
    """No pool runs under this name or pid (never started, exited, or not a pool).

    Attributes:
        pool: the pool as the caller named it.
    """

    def __init__(self, pool: Any, why: str = "no pool is running under this name") -> None:
        super().__init__(f"unknown pool {pool!r}: {why}")
        self.pool = pool


class PoolFullError(trio.WouldBlock):
    """A non-blocking checkout (``block=False``) found no ready worker and no
    overflow slot left (poolboy's ``full``).

    Attributes:
        pool: the pool as the caller named it.
    """

    def __init__(self, pool: Any) -> None:
        super().__init__(
            f"pool {pool!r} is full: every worker is checked out and no overflow is left"
        )
        self.pool = pool


class PoolTimeoutError(trio.TooSlowError):
    """A checkout got no worker within its timeout; nothing is held.

    Attributes:
        pool: the pool as the caller named it.
        timeout: the timeout, in seconds.
    """

    def __init__(self, pool: Any, timeout: float | None) -> None:
        super().__init__(f"no worker of pool {pool!r} was free within {timeout} s")
        self.pool = pool
        self.timeout = timeout


class UnpicklableError(TypeError):
    """``run_cpu`` was given a function or an argument that cannot be sent to a
    worker process (pickle refuses it); nothing was sent.

    Attributes:
        what: which one: ``"the function"`` or ``"argument 2"``, for instance.
        value: a short ``repr`` of it.
    """

    def __init__(self, what: str, value: str, why: str) -> None:
        super().__init__(
            f"run_cpu cannot send {what} ({value}) to a worker process: {why}. "
            "The function must be defined at the top level of an importable module "
            "(not a lambda, a nested function or a bound method of a local object), "
            "and its arguments must be picklable"
        )
        self.what = what
        self.value = value


class UnknownJobsError(NoSuchNameError):
    """No ``Jobs`` runner runs under this name or pid.

    Attributes:
        jobs: the runner as the caller named it.
    """

    def __init__(self, jobs: Any) -> None:
        super().__init__(f"unknown jobs runner {jobs!r}: none is running under this name")
        self.jobs = jobs


class UnknownQueueError(LookupError):
    """``enqueue`` named a queue that the ``Jobs`` runner was not started with.

    Attributes:
        queue: the queue named.
        known: the runner's queues.
    """

    def __init__(self, queue: Any, known: list[str]) -> None:
        super().__init__(f"no job queue {queue!r}; the queues are {known!r}")
        self.queue = queue
        self.known = known


class JobQueueFullError(trio.WouldBlock):
    """A queue already holds its ``max_pending`` jobs waiting to run; the job
    was not accepted.

    Attributes:
        queue: the queue.
        max_pending: its bound.
    """

    def __init__(self, queue: str, max_pending: int) -> None:
        super().__init__(
            f"job queue {queue!r} is full: {max_pending} jobs are already waiting to run"
        )
        self.queue = queue
        self.max_pending = max_pending
