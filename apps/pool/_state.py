"""A pool's bookkeeping: poolboy's state machine, pure.

No Trio, no processes, no clock: the pool's manager process feeds a
``PoolState`` the events it sees (a checkout request, a checkin, a caller or a
worker that went down, a worker it started) and carries out the *effects*
each call returns (start or stop a worker, reply to a caller, monitor or
demonitor a caller). The same events give the same effects, so the rules are
tested here, by hand and against a model, without a single process.

The rules are poolboy's (``devinus/poolboy: src/poolboy.erl``):

- ``size`` workers are started up front and always kept (a worker that
  crashes is replaced).
- A checkout takes a ready worker if there is one (``lifo``: the most
  recently returned, whose caches are warm; ``fifo``: the least recently
  returned, to spread the work); else it starts an *overflow* worker if fewer
  than ``max_overflow`` exist; else the caller waits, first come first
  served, or is told ``Full`` if it would not wait.
- A checkin gives the worker to the oldest waiter; with no one waiting, an
  overflow worker is stopped, and any other goes back to the ready workers.
- Each checkout is identified by a token of the caller's making (a ``Ref``),
  and its caller is monitored from the request on. Its death, the expiry of
  its timeout or its cancellation (all three: ``cancel``) drop the waiting
  request, or check the worker back in if it had been granted already, so a
  worker granted to a caller that gave up at that very moment is not lost
  (poolboy's ``cancel_waiting``, PR #70).
- A worker that goes down while checked out releases its checkout (the
  caller's monitor is dropped); then, as for a checkin, the oldest waiter gets
  a new worker, or an overflow slot is given up, or a replacement is started.
  A ready worker that goes down is replaced.

Invariants (``check_invariants``): the workers are the ready ones plus the
busy ones, ``size + overflow`` of them, with ``overflow <= max_overflow``; no
worker is both ready and busy; a waiting request exists only when no worker
is ready and no overflow slot is left; overflow workers exist only when no
worker is ready.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Literal, TypeAlias

import attrs
from beamlet.actors.lowlevel import check_number

__all__ = [
    "Demonitor",
    "Effect",
    "Full",
    "Grant",
    "Monitor",
    "PoolState",
    "PoolStatus",
    "StartWorker",
    "StopWorker",
    "Strategy",
    "check_pool_options",
]

#: ``"lifo"`` (poolboy's default: the most recently returned worker first) or ``"fifo"``.
Strategy: TypeAlias = Literal["lifo", "fifo"]


@attrs.frozen
class StartWorker:
    """Effect: start a worker, then report it with ``worker_started(pid, for_)``.

    Attributes:
        for_: the checkout that gets it at once, or None for a ready worker.
    """

    for_: Hashable | None


@attrs.frozen
class StopWorker:
    """Effect: stop this (overflow) worker; it is no longer the pool's."""

    worker: Hashable


@attrs.frozen
class Grant:
    """Effect: reply to the request ``checkout`` with ``worker``."""

    checkout: Hashable
    worker: Hashable


@attrs.frozen
class Full:
    """Effect: reply to the non-blocking request ``checkout`` that the pool is full."""

    checkout: Hashable


@attrs.frozen
class Monitor:
    """Effect: monitor ``caller`` for the request ``checkout`` (report its death
    with ``caller_down(checkout)``)."""

    checkout: Hashable
    caller: Hashable


@attrs.frozen
class Demonitor:
    """Effect: drop the monitor of the request ``checkout``'s caller."""

    checkout: Hashable


Effect: TypeAlias = StartWorker | StopWorker | Grant | Full | Monitor | Demonitor


@attrs.frozen
class PoolStatus:
    """A pool's counts, as ``status()`` returns them.

    Attributes:
        ready: workers waiting for a caller.
        busy: workers checked out (overflow ones included).
        overflow: overflow workers alive (all of them busy).
        waiting: callers waiting for a worker.
    """

    ready: int
    busy: int
    overflow: int
    waiting: int


def check_pool_options(size: object, max_overflow: object, strategy: object) -> None:
    """Raise ``TypeError``/``ValueError`` naming the option for a bad pool option."""
    check_number(size, "pool size", minimum=1, integer=True)
    check_number(max_overflow, "pool max_overflow", integer=True)
    if strategy not in ("lifo", "fifo") or not isinstance(strategy, str):
        raise ValueError(f"pool strategy must be 'lifo' or 'fifo', not {strategy!r}")


class _Checkout:
    """One request: its caller, and the worker granted to it (None while it waits)."""

    __slots__ = ("caller", "worker")

    def __init__(self, caller: Hashable) -> None:
        self.caller = caller
        self.worker: Hashable | None = None


class PoolState:
    """The workers, checkouts and waiting callers of one pool.

    Each event method returns the effects to carry out, in order. A
    ``StartWorker`` effect must be answered by ``worker_started`` (with the
    new worker's id) before any other event is fed in; the manager does so
    while it handles the event that asked for it.

    Args:
        size: workers kept at all times (int >= 1).
        max_overflow: extra workers started under load, stopped when
            returned with no one waiting (int >= 0).
        strategy: ``"lifo"`` or ``"fifo"``.

    Raises:
        TypeError / ValueError: an invalid option, named.
    """

    __slots__ = (
        "_starting",
        "busy",
        "checkouts",
        "max_overflow",
        "overflow",
        "ready",
        "size",
        "strategy",
        "waiting",
    )

    def __init__(self, size: int, max_overflow: int = 0, strategy: Strategy = "lifo") -> None:
        check_pool_options(size, max_overflow, strategy)
        self.size = size
        self.max_overflow = max_overflow
        self.strategy = strategy
        #: Ready workers, as poolboy's queue: checkouts take from the left,
        #: checkins go left (lifo) or right (fifo), new workers right.
        self.ready: deque[Hashable] = deque()
        #: Busy worker -> the checkout that holds it.
        self.busy: dict[Hashable, Hashable] = {}
        #: Every live request (waiting or granted), by its token.
        self.checkouts: dict[Hashable, _Checkout] = {}
        #: Waiting requests, oldest first (a dict: O(1) removal from the middle).
        self.waiting: dict[Hashable, None] = {}
        self.overflow = 0
        self._starting = 0

    # -- starting -----------------------------------------------------------------------

    def start(self) -> list[Effect]:
        """The effects that start the pool: ``size`` ready workers."""
        self._starting += self.size
        return [StartWorker(None) for _ in range(self.size)]

    def worker_started(self, worker: Hashable, for_: Hashable | None) -> list[Effect]:
        """A worker asked for by ``StartWorker(for_)`` is running as ``worker``."""
        if self._starting <= 0:
            raise RuntimeError("worker_started() without a StartWorker effect to answer")
        self._starting -= 1
        if for_ is None:
            self.ready.append(worker)
            return []
        self.checkouts[for_].worker = worker
        self.busy[worker] = for_
        return [Grant(for_, worker)]

    # -- callers ------------------------------------------------------------------------

    def checkout(self, checkout: Hashable, caller: Hashable, block: bool = True) -> list[Effect]:
        """A caller asks for a worker; ``checkout`` is its request's unique token.

        Raises:
            ValueError: ``checkout`` is already in use.
        """
        if checkout in self.checkouts:
            raise ValueError(f"checkout token {checkout!r} is already in use")
        if self.ready:
            worker = self.ready.popleft()
            self.checkouts[checkout] = record = _Checkout(caller)
            record.worker = worker
            self.busy[worker] = checkout
            return [Monitor(checkout, caller), Grant(checkout, worker)]
        if self.overflow < self.max_overflow:
            self.overflow += 1
            self._starting += 1
            self.checkouts[checkout] = _Checkout(caller)
            return [Monitor(checkout, caller), StartWorker(checkout)]
        if not block:
            return [Full(checkout)]
        self.checkouts[checkout] = _Checkout(caller)
        self.waiting[checkout] = None
        return [Monitor(checkout, caller)]

    def checkin(self, checkout: Hashable) -> list[Effect]:
        """The caller is done with the worker of ``checkout``.

        An unknown token (already checked in, or released because its worker
        went down) changes nothing; a request still waiting is dropped.
        """
        record = self.checkouts.pop(checkout, None)
        if record is None:
            return []
        effects: list[Effect] = [Demonitor(checkout)]
        self._release(checkout, record, effects)
        return effects

    def cancel(self, checkout: Hashable) -> list[Effect]:
        """The caller gave up (timeout, cancellation): drop its request, or
        take back the worker if one was granted meanwhile."""
        return self.checkin(checkout)

    def caller_down(self, checkout: Hashable) -> list[Effect]:
        """The caller of ``checkout`` exited (its monitor fired): as ``cancel``,
        without a ``Demonitor``."""
        record = self.checkouts.pop(checkout, None)
        if record is None:
            return []
        effects: list[Effect] = []
        self._release(checkout, record, effects)
        return effects

    def _release(self, checkout: Hashable, record: _Checkout, effects: list[Effect]) -> None:
        worker = record.worker
        if worker is None:
            del self.waiting[checkout]
            return
        del self.busy[worker]
        self._return(worker, effects)

    def _return(self, worker: Hashable, effects: list[Effect]) -> None:
        """poolboy's ``handle_checkin``: a waiter, else dismiss an overflow worker, else ready."""
        if self.waiting:
            waiter = next(iter(self.waiting))
            del self.waiting[waiter]
            self.checkouts[waiter].worker = worker
            self.busy[worker] = waiter
            effects.append(Grant(waiter, worker))
        elif self.overflow > 0:
            self.overflow -= 1
            effects.append(StopWorker(worker))
        elif self.strategy == "lifo":
            self.ready.appendleft(worker)
        else:
            self.ready.append(worker)

    # -- workers ------------------------------------------------------------------------

    def worker_down(self, worker: Hashable) -> list[Effect]:
        """A worker exited (crashed, or was stopped by someone else).

        An unknown worker (one the pool stopped itself) changes nothing.
        """
        checkout = self.busy.pop(worker, None)
        if checkout is None:
            try:
                self.ready.remove(worker)
            except ValueError:
                return []
            self._starting += 1
            return [StartWorker(None)]
        del self.checkouts[checkout]
        effects: list[Effect] = [Demonitor(checkout)]
        if self.waiting:  # poolboy's handle_worker_exit
            waiter = next(iter(self.waiting))
            del self.waiting[waiter]
            self._starting += 1
            effects.append(StartWorker(waiter))
        elif self.overflow > 0:
            self.overflow -= 1
        else:
            self._starting += 1
            effects.append(StartWorker(None))
        return effects

    # -- reading ------------------------------------------------------------------------

    def status(self) -> PoolStatus:
        """The counts: ready, busy, overflow and waiting."""
        return PoolStatus(len(self.ready), len(self.busy), self.overflow, len(self.waiting))

    def workers(self) -> list[Hashable]:
        """Every worker of the pool: the ready ones, then the busy ones."""
        return [*self.ready, *self.busy]

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the bookkeeping is inconsistent (for tests)."""
        ready = set(self.ready)
        assert len(ready) == len(self.ready), "a worker is ready twice"
        assert not ready & set(self.busy), "a worker is both ready and busy"
        if self._starting == 0:
            assert len(ready) + len(self.busy) == self.size + self.overflow, "a worker leaked"
        assert 0 <= self.overflow <= self.max_overflow
        assert not (self.waiting and (ready or self.overflow < self.max_overflow))
        assert not (self.overflow and ready), "overflow workers while some are ready"
        for checkout, record in self.checkouts.items():
            if record.worker is None:
                assert checkout in self.waiting
            else:
                assert self.busy.get(record.worker) == checkout
        assert set(self.waiting) <= set(self.checkouts)
