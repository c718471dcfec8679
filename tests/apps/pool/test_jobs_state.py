"""The jobs' pure core: backoff delays and per-queue concurrency, by hand and by property."""

from __future__ import annotations

from typing import Any

import pytest
from beamlet.apps.pool._jobs_state import (
    JobQueues,
    QueueFull,
    QueueStats,
    backoff_delay,
    check_queues,
)
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 1.0, 300.0, 0.0, 0.0) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert backoff_delay(9, 1.0, 300.0, 0.0, 0.0) == 256
    assert backoff_delay(10, 1.0, 300.0, 0.0, 0.0) == 300
    assert backoff_delay(10_000, 1.0, 300.0, 0.0, 0.0) == 300  # no overflow
    assert backoff_delay(3, 0.0, 300.0, 0.1, 0.5) == 0


def test_jitter_adds_up_to_its_fraction() -> None:
    assert backoff_delay(2, 1.0, 300.0, 0.1, 0.0) == 2.0
    assert backoff_delay(2, 1.0, 300.0, 0.1, 0.5) == pytest.approx(2.1)
    assert backoff_delay(10, 1.0, 300.0, 0.1, 0.999) == pytest.approx(329.97)


@given(
    attempt=st.integers(1, 100),
    base=st.floats(0, 1e3),
    cap=st.floats(0, 1e4),
    jitter=st.floats(0, 1),
    u=st.floats(0, 1, exclude_max=True),
)
def test_backoff_is_bounded(attempt: int, base: float, cap: float, jitter: float, u: float) -> None:
    delay = backoff_delay(attempt, base, cap, jitter, u)
    plain = backoff_delay(attempt, base, cap, 0.0, 0.0)
    assert 0 <= plain <= cap
    assert plain <= delay <= plain * (1 + jitter) + 1e-9


def test_a_queue_runs_its_limit_then_queues_fifo_up_to_max_pending() -> None:
    queues = JobQueues({"email": 2}, max_pending=2)
    assert queues.submit("email", 1) == [1]
    assert queues.submit("email", 2) == [2]
    assert queues.submit("email", 3) == []
    assert queues.submit("email", 4) == []
    with pytest.raises(QueueFull):
        queues.submit("email", 5)
    assert queues.stats()["email"] == QueueStats(limit=2, running=2, pending=2)
    assert queues.done("email", 1, "succeeded") == [3]
    assert queues.done("email", 2, "retry") == [4]  # job 2 waits for its retry...
    assert queues.due("email", 2) == []  # ...and then for a slot, at the back
    assert queues.done("email", 3, "failed") == [2]
    assert queues.stats()["email"] == QueueStats(
        limit=2, running=2, pending=0, scheduled=0, succeeded=1, failed=1, retries=1
    )
    assert not queues.idle()
    queues.done("email", 4, "succeeded")
    queues.done("email", 2, "succeeded")
    assert queues.idle()
    with pytest.raises(KeyError):
        queues.submit("sms", 9)


def test_a_retry_is_never_refused() -> None:
    queues = JobQueues({"q": 1}, max_pending=0)
    assert queues.submit("q", 1) == [1]
    with pytest.raises(QueueFull):
        queues.submit("q", 2)
    queues.done("q", 1, "retry")
    assert queues.submit("q", 3) == [3]
    assert queues.due("q", 1) == []  # queued past max_pending: it was accepted once
    assert queues.stats()["q"].pending == 1


@pytest.mark.parametrize(
    ("queues", "error", "words"),
    [
        ({}, TypeError, "non-empty dict"),
        (["email"], TypeError, "non-empty dict"),
        ({"": 1}, TypeError, "name must be a non-empty str"),
        ({"email": 0}, ValueError, "job queue 'email': concurrency must be an int >= 1, not 0"),
        ({"email": 1.5}, TypeError, "concurrency must be an int"),
        ({"email": True}, TypeError, "concurrency"),
    ],
)
def test_bad_queues_are_refused_by_name(queues: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        check_queues(queues)


class QueuesMachine(RuleBasedStateMachine):
    """Random submissions, ends and retries: a queue never runs more than its
    limit, keeps a slot idle only when nothing waits, and starts jobs in order."""

    @initialize(limit=st.integers(1, 3), max_pending=st.integers(0, 4))
    def start(self, limit: int, max_pending: int) -> None:
        self.queues = JobQueues({"q": limit}, max_pending)
        self.limit = limit
        self.max_pending = max_pending
        self.next = 0
        self.running: list[int] = []
        self.waiting: list[int] = []  # the model's FIFO
        self.scheduled: list[int] = []

    def started(self, jobs: list[Any]) -> None:
        for job in jobs:
            if job in self.waiting:
                assert self.waiting[0] == job  # first in, first out
                self.waiting.remove(job)
            self.running.append(job)

    @rule()
    def submit(self) -> None:
        self.next += 1
        try:
            started = self.queues.submit("q", self.next)
        except QueueFull:
            assert len(self.running) == self.limit and len(self.waiting) >= self.max_pending
            return
        if not started:
            self.waiting.append(self.next)
        self.started(started)

    @precondition(lambda self: bool(self.running))
    @rule(data=st.data(), outcome=st.sampled_from(["succeeded", "failed", "retry"]))
    def end(self, data: st.DataObject, outcome: str) -> None:
        job = data.draw(st.sampled_from(self.running))
        self.running.remove(job)
        if outcome == "retry":
            self.scheduled.append(job)
        self.started(self.queues.done("q", job, outcome))

    @precondition(lambda self: bool(self.scheduled))
    @rule(data=st.data())
    def retry_due(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.scheduled))
        self.scheduled.remove(job)
        started = self.queues.due("q", job)
        if not started:
            self.waiting.append(job)
        self.started(started)

    @invariant()
    def bounded_and_consistent(self) -> None:
        stats = self.queues.stats()["q"]
        assert stats.running == len(self.running) <= self.limit
        assert stats.pending == len(self.waiting)
        assert stats.scheduled == len(self.scheduled)
        assert not (self.waiting and len(self.running) < self.limit)
        assert self.queues.idle() == (not self.running and not self.waiting and not self.scheduled)


TestQueuesMachine = QueuesMachine.TestCase
TestQueuesMachine.settings = settings(max_examples=150, stateful_step_count=30)
