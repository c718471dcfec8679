"""The pool's pure core: each rule by hand, then a state machine against a poolboy model."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pytest
from beamlet.apps.pool._state import (
    Demonitor,
    Effect,
    Full,
    Grant,
    Monitor,
    PoolState,
    PoolStatus,
    StartWorker,
    StopWorker,
)
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)


class Driver:
    """Carries out a PoolState's effects as the manager would, with worker ids 0, 1, ..."""

    def __init__(self, state: PoolState) -> None:
        self.state = state
        self.next_id = 0
        self.grants: list[tuple[Hashable, Hashable]] = []
        self.full: list[Hashable] = []
        self.stopped: list[Hashable] = []
        self.monitors: set[Hashable] = set()
        self.run(state.start())

    def run(self, effects: list[Effect]) -> None:
        queue = list(effects)
        while queue:
            effect = queue.pop(0)
            if isinstance(effect, StartWorker):
                worker = self.next_id
                self.next_id += 1
                queue[:0] = self.state.worker_started(worker, effect.for_)
            elif isinstance(effect, Grant):
                self.grants.append((effect.checkout, effect.worker))
            elif isinstance(effect, Full):
                self.full.append(effect.checkout)
            elif isinstance(effect, StopWorker):
                self.stopped.append(effect.worker)
            elif isinstance(effect, Monitor):
                assert effect.checkout not in self.monitors
                self.monitors.add(effect.checkout)
            else:
                assert isinstance(effect, Demonitor)
                self.monitors.discard(effect.checkout)

    def take_grants(self) -> list[tuple[Hashable, Hashable]]:
        grants, self.grants = self.grants, []
        return grants


# -- the rules, by hand -------------------------------------------------------


def test_start_makes_size_ready_workers() -> None:
    driver = Driver(PoolState(3))
    assert driver.state.status() == PoolStatus(ready=3, busy=0, overflow=0, waiting=0)
    assert list(driver.state.ready) == [0, 1, 2]


def test_checkout_and_checkin_lifo_reuses_the_last_returned_worker() -> None:
    driver = Driver(PoolState(3, strategy="lifo"))
    state = driver.state
    driver.run(state.checkout("a", "caller"))
    driver.run(state.checkout("b", "caller"))
    assert driver.take_grants() == [("a", 0), ("b", 1)]
    assert driver.monitors == {"a", "b"}
    driver.run(state.checkin("a"))
    driver.run(state.checkin("b"))
    assert driver.monitors == set()
    assert list(state.ready) == [1, 0, 2]
    driver.run(state.checkout("c", "caller"))
    assert driver.take_grants() == [("c", 1)]


def test_fifo_hands_out_the_least_recently_returned_worker() -> None:
    driver = Driver(PoolState(2, strategy="fifo"))
    state = driver.state
    driver.run(state.checkout("a", "caller"))
    driver.run(state.checkin("a"))
    assert list(state.ready) == [1, 0]
    driver.run(state.checkout("b", "caller"))
    assert driver.take_grants() == [("a", 0), ("b", 1)]


def test_waiters_are_served_first_come_first_served() -> None:
    driver = Driver(PoolState(1))
    state = driver.state
    driver.run(state.checkout("holder", "p"))
    for waiter in ("w1", "w2", "w3"):
        driver.run(state.checkout(waiter, "q"))
    assert state.status() == PoolStatus(ready=0, busy=1, overflow=0, waiting=3)
    driver.take_grants()
    driver.run(state.checkin("holder"))
    driver.run(state.cancel("w2"))  # w2 gives up before its turn
    driver.run(state.checkin("w1"))
    assert driver.take_grants() == [("w1", 0), ("w3", 0)]
    assert state.status() == PoolStatus(ready=0, busy=1, overflow=0, waiting=0)


def test_non_blocking_checkout_of_a_full_pool_is_told_full() -> None:
    driver = Driver(PoolState(1))
    state = driver.state
    driver.run(state.checkout("a", "p", block=False))
    driver.run(state.checkout("b", "p", block=False))
    assert driver.full == ["b"]
    assert "b" not in state.checkouts and "b" not in driver.monitors


def test_overflow_workers_are_started_then_stopped_when_returned_to_no_one() -> None:
    driver = Driver(PoolState(1, max_overflow=2))
    state = driver.state
    for token in ("a", "b", "c"):
        driver.run(state.checkout(token, "p"))
    assert driver.take_grants() == [("a", 0), ("b", 1), ("c", 2)]
    assert state.status() == PoolStatus(ready=0, busy=3, overflow=2, waiting=0)
    driver.run(state.checkout("d", "p"))  # waits: no overflow slot left
    driver.run(state.checkin("a"))  # goes to the waiter, not stopped
    assert driver.take_grants() == [("d", 0)]
    driver.run(state.checkin("b"))
    driver.run(state.checkin("d"))  # worker 0, but any returned worker retires the overflow
    assert driver.stopped == [1, 0]
    driver.run(state.checkin("c"))
    assert state.status() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)
    assert list(state.ready) == [2]
    state.check_invariants()


def test_cancel_after_the_grant_takes_the_worker_back() -> None:
    driver = Driver(PoolState(1))
    state = driver.state
    driver.run(state.checkout("a", "p"))
    driver.run(state.checkout("late", "q"))
    driver.run(state.checkin("a"))  # granted to "late"...
    assert driver.take_grants() == [("a", 0), ("late", 0)]
    driver.run(state.cancel("late"))  # ...which timed out at that very moment
    assert state.status() == PoolStatus(ready=1, busy=0, overflow=0, waiting=0)
    assert driver.monitors == set()


def test_caller_death_returns_its_worker_and_drops_its_wait() -> None:
    driver = Driver(PoolState(1))
    state = driver.state
    driver.run(state.checkout("a", "p"))
    driver.run(state.checkout("b", "q"))
    driver.run(state.checkout("c", "r"))
    assert state.caller_down("b") == []  # a Down removes its monitor: no Demonitor
    assert state.caller_down("a") == [Grant("c", 0)]
    assert state.status() == PoolStatus(ready=0, busy=1, overflow=0, waiting=0)
    assert state.caller_down("a") == []


def test_a_crashed_busy_worker_is_replaced_and_its_checkout_released() -> None:
    driver = Driver(PoolState(2))
    state = driver.state
    driver.run(state.checkout("a", "p"))
    driver.run(state.worker_down(0))
    assert "a" not in driver.monitors
    assert state.status() == PoolStatus(ready=2, busy=0, overflow=0, waiting=0)
    assert list(state.ready) == [1, 2]
    assert state.checkin("a") == []  # its late checkin changes nothing


def test_a_crashed_worker_goes_to_the_oldest_waiter_replaced() -> None:
    driver = Driver(PoolState(1))
    state = driver.state
    driver.run(state.checkout("a", "p"))
    driver.run(state.checkout("b", "q"))
    driver.take_grants()
    driver.run(state.worker_down(0))
    assert driver.take_grants() == [("b", 1)]


def test_a_crashed_overflow_worker_is_not_replaced_with_no_one_waiting() -> None:
    driver = Driver(PoolState(1, max_overflow=1))
    state = driver.state
    driver.run(state.checkout("a", "p"))
    driver.run(state.checkout("b", "p"))
    driver.run(state.worker_down(1))
    assert state.status() == PoolStatus(ready=0, busy=1, overflow=0, waiting=0)
    assert driver.next_id == 2


def test_a_crashed_ready_worker_is_replaced_and_unknown_ones_ignored() -> None:
    driver = Driver(PoolState(2))
    state = driver.state
    driver.run(state.worker_down(0))
    assert list(state.ready) == [1, 2]
    assert state.worker_down(0) == []
    assert state.worker_down("stranger") == []


def test_worker_started_needs_a_start_effect_and_tokens_are_unique() -> None:
    driver = Driver(PoolState(1))
    with pytest.raises(RuntimeError, match="without a StartWorker"):
        driver.state.worker_started(99, None)
    driver.run(driver.state.checkout("a", "p"))
    with pytest.raises(ValueError, match="already in use"):
        driver.state.checkout("a", "p")


@pytest.mark.parametrize(
    ("size", "max_overflow", "strategy", "error", "words"),
    [
        (0, 0, "lifo", ValueError, "size must be an int >= 1, not 0"),
        (1.5, 0, "lifo", TypeError, "size must be an int >= 1, not 1.5"),
        (True, 0, "lifo", TypeError, "size"),
        (1, -1, "lifo", ValueError, "max_overflow must be an int >= 0, not -1"),
        (1, 0, "random", ValueError, "strategy must be 'lifo' or 'fifo', not 'random'"),
        (1, 0, ["lifo"], ValueError, "strategy"),
    ],
)
def test_bad_options_are_refused_by_name(
    size: Any, max_overflow: Any, strategy: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        PoolState(size, max_overflow, strategy)


# -- the model: poolboy 1.5.1's gen_server, transcribed -----------------------


class PoolboyModel:
    """``src/poolboy.erl``'s handle_call/cast/info, with lists for queues and a dict for ETS."""

    def __init__(self, size: int, max_overflow: int, strategy: str) -> None:
        self.max_overflow = max_overflow
        self.strategy = strategy
        self.next_id = 0
        self.workers: list[int] = [self.new_worker() for _ in range(size)]  # prepopulate
        self.monitors: dict[int, str] = {}  # worker -> CRef
        self.waiting: list[str] = []  # CRefs
        self.overflow = 0
        self.replies: list[tuple[str, int]] = []
        self.dismissed: list[int] = []

    def new_worker(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def checkout(self, cref: str, block: bool) -> str:
        if self.workers:
            pid = self.workers.pop(0)
            self.monitors[pid] = cref
            self.replies.append((cref, pid))
            return "granted"
        if self.max_overflow > 0 and self.overflow < self.max_overflow:
            pid = self.new_worker()
            self.monitors[pid] = cref
            self.replies.append((cref, pid))
            self.overflow += 1
            return "granted"
        if not block:
            return "full"
        self.waiting.append(cref)
        return "waiting"

    def checkin_by_cref(self, cref: str) -> None:
        """The client side of our checkin (by token) and poolboy's cancel_waiting."""
        found = [pid for pid, ref in self.monitors.items() if ref == cref]
        if found:
            del self.monitors[found[0]]
            self.handle_checkin(found[0])
        else:
            self.waiting = [ref for ref in self.waiting if ref != cref]

    def down(self, cref: str) -> None:  # the caller's 'DOWN'
        self.checkin_by_cref(cref)

    def handle_checkin(self, pid: int) -> None:
        if self.waiting:
            cref = self.waiting.pop(0)
            self.monitors[pid] = cref
            self.replies.append((cref, pid))
        elif self.overflow > 0:
            self.dismissed.append(pid)
            self.overflow -= 1
        elif self.strategy == "lifo":
            self.workers.insert(0, pid)
        else:
            self.workers.append(pid)

    def worker_exit(self, pid: int) -> None:  # the worker's 'EXIT'
        if pid in self.monitors:
            del self.monitors[pid]
            if self.waiting:
                cref = self.waiting.pop(0)
                new = self.new_worker()
                self.monitors[new] = cref
                self.replies.append((cref, new))
            elif self.overflow > 0:
                self.overflow -= 1
            else:
                self.workers = [w for w in self.workers if w != pid]
                self.workers.append(self.new_worker())
        elif pid in self.workers:
            self.workers = [w for w in self.workers if w != pid]
            self.workers.append(self.new_worker())

    def take_replies(self) -> list[tuple[str, int]]:
        replies, self.replies = self.replies, []
        return replies


class PoolMachine(RuleBasedStateMachine):
    """Random checkouts, checkins, timeouts, caller deaths and worker crashes,
    fed to ``PoolState`` and to the poolboy model; they must agree on every reply."""

    granted = Bundle("granted")
    waiting = Bundle("waiting")

    @initialize(
        size=st.integers(1, 4),
        max_overflow=st.integers(0, 3),
        strategy=st.sampled_from(["lifo", "fifo"]),
    )
    def start(self, size: int, max_overflow: int, strategy: Any) -> None:
        self.driver = Driver(PoolState(size, max_overflow, strategy))
        self.model = PoolboyModel(size, max_overflow, strategy)
        self.tokens = 0
        self.callers: dict[str, int] = {}  # token -> caller
        self.wait_order: list[str] = []  # our own record of who waits, oldest first
        self.live_workers: set[Hashable] = set(range(size))

    @property
    def state(self) -> PoolState:
        return self.driver.state

    def compare(self) -> None:
        """Carry out the step on both sides; the replies must be the same, in order."""
        grants = self.driver.take_grants()
        assert grants == self.model.take_replies()
        for token, worker in grants:
            if token in self.wait_order:
                # A waiter served: it must be the oldest one still waiting.
                assert self.wait_order[0] == token
                self.wait_order.remove(token)
            self.live_workers.add(worker)
        for worker in self.driver.stopped:
            self.live_workers.discard(worker)
        assert self.driver.stopped == self.model.dismissed

    @rule(target=granted, caller=st.integers(0, 2), block=st.booleans())
    def checkout(self, caller: int, block: bool) -> Any:
        self.tokens += 1
        token = f"c{self.tokens}"
        self.callers[token] = caller
        self.driver.run(self.state.checkout(token, caller, block))
        outcome = self.model.checkout(token, block)
        if outcome == "waiting":
            self.wait_order.append(token)
        if outcome == "full":
            assert self.driver.full[-1] == token
        self.compare()
        return token

    @rule(token=consumes(granted))
    def checkin(self, token: str) -> None:
        self.driver.run(self.state.checkin(token))
        self.model.checkin_by_cref(token)
        self.wait_order = [t for t in self.wait_order if t != token]
        self.compare()

    @rule(token=granted)
    def cancel(self, token: str) -> None:
        """A timeout or a cancellation: the request may be waiting, granted, or long gone."""
        self.driver.run(self.state.cancel(token))
        self.model.checkin_by_cref(token)
        self.wait_order = [t for t in self.wait_order if t != token]
        self.compare()

    @rule(caller=st.integers(0, 2))
    def caller_dies(self, caller: int) -> None:
        for token in [t for t, c in self.callers.items() if c == caller]:
            del self.callers[token]
            if token in self.driver.monitors:
                self.driver.monitors.discard(token)  # the Down consumes the monitor
                self.driver.run(self.state.caller_down(token))
                self.model.down(token)
                self.wait_order = [t for t in self.wait_order if t != token]
        self.compare()

    @precondition(lambda self: bool(self.live_workers))
    @rule(data=st.data())
    def worker_crashes(self, data: st.DataObject) -> None:
        worker = data.draw(st.sampled_from(sorted(self.live_workers, key=repr)))
        self.live_workers.discard(worker)
        before = self.driver.next_id
        self.driver.run(self.state.worker_down(worker))
        self.model.worker_exit(worker)  # type: ignore[arg-type]
        self.live_workers.update(range(before, self.driver.next_id))
        self.compare()

    @invariant()
    def agrees_with_the_model(self) -> None:
        state = self.state
        state.check_invariants()
        model = self.model
        assert list(state.ready) == model.workers
        assert state.overflow == model.overflow
        assert list(state.waiting) == model.waiting
        assert {w: c for w, c in state.busy.items()} == model.monitors
        assert list(state.waiting) == self.wait_order
        # No leaked worker, no leaked monitor; never more than size + max_overflow.
        assert set(state.workers()) == self.live_workers
        assert len(self.live_workers) <= state.size + state.max_overflow
        assert self.driver.monitors == set(state.checkouts)
        assert self.driver.next_id == model.next_id


TestPoolMachine = PoolMachine.TestCase
TestPoolMachine.settings = settings(max_examples=300, stateful_step_count=40)
