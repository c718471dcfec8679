"""Jobs: retries at exact virtual times, bounded queues, final failures, timeouts, bad input."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Exit,
    Node,
    Pid,
    call,
    cast,
    receive,
    self_pid,
    send,
    send_exit,
    whereis,
)
from beamlet.apps.pool import (
    JobFailure,
    JobQueueFullError,
    Jobs,
    QueueStats,
    UnknownJobsError,
    UnknownQueueError,
    enqueue,
)
from beamlet.supervisors import Supervisor


class Flaky:
    """An async job that fails its first ``failures`` runs, recording when each ran."""

    def __init__(self, failures: int, seconds: float = 0.0) -> None:
        self.failures = failures
        self.seconds = seconds
        self.runs: list[float] = []

    async def __call__(self, *args: Any) -> str:
        self.runs.append(trio.current_time())
        await trio.sleep(self.seconds)
        if len(self.runs) <= self.failures:
            raise ConnectionError(f"attempt {len(self.runs)} failed")
        return "done"


async def test_a_crashing_job_is_retried_with_exponential_backoff(
    node: Node, autojump_clock: Any
) -> None:
    async def body() -> None:
        await Jobs.start_link("jobs", queues={"email": 1}, jitter=0.0)
        job = Flaky(failures=3)
        t0 = trio.current_time()
        await enqueue("jobs", "email", job, max_attempts=5, backoff=1.0)
        await Jobs.drain("jobs")
        assert [t - t0 for t in job.runs] == [0.0, 1.0, 3.0, 7.0]  # waits of 1, 2, 4 s
        assert (await Jobs.stats("jobs"))["email"] == QueueStats(limit=1, succeeded=1, retries=3)

    await node.run(body)


async def test_jitter_adds_up_to_ten_percent_reproducibly(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Jobs.start_link("jobs", queues={"q": 1}, seed=42)  # jitter 0.1 by default
        job = Flaky(failures=2)
        t0 = trio.current_time()
        await enqueue("jobs", "q", job, backoff=2.0)
        await Jobs.drain("jobs")
        draws = random.Random(42)
        first = 2.0 * (1 + 0.1 * draws.random())
        second = 4.0 * (1 + 0.1 * draws.random())
        assert [t - t0 for t in job.runs] == pytest.approx([0.0, first, first + second], abs=1e-9)
        assert 2.0 < first < 2.2 and 4.0 < second < 4.4

    await node.run(body)


async def test_a_backoff_function_sets_each_delay(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Jobs.start_link("jobs", queues={"q": 1})
        job = Flaky(failures=2)
        t0 = trio.current_time()
        await enqueue("jobs", "q", job, backoff=lambda attempt: 10.0 * attempt)
        await Jobs.drain("jobs")
        assert [t - t0 for t in job.runs] == [0.0, 10.0, 30.0]

    await node.run(body)


async def test_the_backoff_is_capped_at_max_backoff(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Jobs.start_link("jobs", queues={"q": 1}, jitter=0, max_backoff=5.0)
        job = Flaky(failures=4)
        t0 = trio.current_time()
        await enqueue("jobs", "q", job, max_attempts=5, backoff=2.0)
        await Jobs.drain("jobs")
        assert [t - t0 for t in job.runs] == [0.0, 2.0, 6.0, 11.0, 16.0]

    await node.run(body)


async def test_the_last_failure_is_logged_and_handed_to_the_handler(
    node: Node, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        me = self_pid()
        failures: list[JobFailure] = []

        async def on_failure(failure: JobFailure) -> None:
            failures.append(failure)
            send(me, "reported")

        await Jobs.start_link("jobs", queues={"email": 2}, on_failure=on_failure, jitter=0)
        job = Flaky(failures=10)
        job_id = await enqueue("jobs", "email", job, "ada@example.com", max_attempts=3)
        with caplog.at_level(logging.ERROR, logger="beamlet.apps.pool"):
            await Jobs.drain("jobs")
        assert len(job.runs) == 3
        assert await receive() == "reported"
        [failure] = failures
        assert failure.id == job_id and failure.queue == "email" and failure.attempts == 3
        assert failure.fn is job and failure.args == ("ada@example.com",)
        assert isinstance(failure.reason, ConnectionError)
        assert str(failure.reason) == "attempt 3 failed"
        [line] = [r.getMessage() for r in caplog.records if "job " in r.getMessage()]
        assert line == (
            f"job {job_id} (Flaky) of queue 'email' failed after 3 attempts: "
            "it crashed with ConnectionError: attempt 3 failed"
        )
        stats = (await Jobs.stats("jobs"))["email"]
        assert (stats.failed, stats.retries, stats.succeeded) == (1, 2, 0)

    await node.run(body)


async def test_a_sync_handler_and_a_failing_handler_do_not_harm_the_runner(
    node: Node, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        seen: list[int] = []

        def on_failure(failure: JobFailure) -> None:
            seen.append(failure.id)
            raise RuntimeError("the handler itself fails")

        await Jobs.start_link("jobs", queues={"q": 1}, on_failure=on_failure)
        with caplog.at_level(logging.CRITICAL):
            first = await enqueue("jobs", "q", Flaky(failures=1), max_attempts=1)
            await Jobs.drain("jobs")
            await trio.testing.wait_all_tasks_blocked()
        assert seen == [first]
        await enqueue("jobs", "q", Flaky(failures=0))
        await Jobs.drain("jobs")
        assert (await Jobs.stats("jobs"))["q"].succeeded == 1

    await node.run(body)


async def test_concurrency_is_bounded_per_queue(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Jobs.start_link("jobs", queues={"email": 2, "reports": 1})
        running = 0
        most = 0
        finished: list[tuple[str, float]] = []

        async def work(label: str, seconds: float) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await trio.sleep(seconds)
            running -= 1
            finished.append((label, trio.current_time()))

        t0 = trio.current_time()
        for i in range(5):
            await enqueue("jobs", "email", work, f"e{i}", 1.0)
        await enqueue("jobs", "reports", work, "r0", 0.5)
        stats = await Jobs.stats("jobs")
        assert stats["email"] == QueueStats(limit=2, running=2, pending=3)
        assert stats["reports"] == QueueStats(limit=1, running=1, pending=0)
        await Jobs.drain("jobs")
        assert most == 3  # 2 emails and the report
        assert sorted((t - t0, label) for label, t in finished) == [
            (0.5, "r0"),
            (1.0, "e0"),
            (1.0, "e1"),
            (2.0, "e2"),
            (2.0, "e3"),
            (3.0, "e4"),
        ]

    await node.run(body)


async def test_a_full_queue_refuses_new_jobs(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        await Jobs.start_link("jobs", queues={"q": 1}, max_pending=2)
        for _ in range(3):
            await enqueue("jobs", "q", trio.sleep, 1.0)
        with pytest.raises(JobQueueFullError, match="job queue 'q' is full: 2 jobs") as info:
            await enqueue("jobs", "q", trio.sleep, 1.0)
        assert info.value.queue == "q" and info.value.max_pending == 2
        assert isinstance(info.value, trio.WouldBlock)
        assert (await Jobs.stats("jobs"))["q"] == QueueStats(limit=1, running=1, pending=2)
        await Jobs.drain("jobs")
        assert trio.current_time() == 3.0
        assert (await Jobs.stats("jobs"))["q"].succeeded == 3

    await node.run(body)


async def test_an_attempt_past_its_timeout_is_killed_and_retried(
    node: Node, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        failures: list[JobFailure] = []
        await Jobs.start_link("jobs", queues={"q": 1}, on_failure=failures.append, jitter=0)
        job = Flaky(failures=0, seconds=10.0)
        t0 = trio.current_time()
        with caplog.at_level(logging.ERROR, logger="beamlet.apps.pool"):
            await enqueue("jobs", "q", job, max_attempts=2, backoff=1.0, timeout=2.0)
            await Jobs.drain("jobs")
        assert [t - t0 for t in job.runs] == [0.0, 3.0]  # killed at 2 s, retried 1 s later
        assert trio.current_time() - t0 == 5.0
        await trio.testing.wait_all_tasks_blocked()
        assert [f.reason for f in failures] == ["timeout"]
        assert "failed after 2 attempts: it timed out" in caplog.text

    await node.run(body)


async def test_a_job_killed_from_outside_counts_as_a_failure(
    node: Node, autojump_clock: Any
) -> None:
    async def body() -> None:
        await Jobs.start_link("jobs", queues={"q": 1}, jitter=0)
        me = self_pid()

        async def report_and_wait() -> None:
            send(me, self_pid())
            await trio.sleep(5)

        await enqueue("jobs", "q", report_and_wait, max_attempts=2)
        first: Pid = await receive()
        send_exit(first, "kill")
        second: Pid = await receive()
        assert second != first
        await Jobs.drain("jobs")
        stats = (await Jobs.stats("jobs"))["q"]
        assert (stats.retries, stats.succeeded) == (1, 1)

    await node.run(body)


async def test_stopping_drops_the_jobs_not_done_and_says_so(
    node: Node, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        stopped: list[Any] = []

        async def long_job() -> None:
            try:
                await trio.sleep(100)
            finally:
                stopped.append(trio.current_time())

        sup = await Supervisor.start_link([Jobs.child_spec("jobs", queues={"q": 1})])
        await enqueue("jobs", "q", long_job)
        await enqueue("jobs", "q", long_job)
        await trio.sleep(1)
        with caplog.at_level(logging.WARNING, logger="beamlet.apps.pool"):
            await Supervisor.terminate_child(sup, ("Jobs", "jobs"))
        assert stopped == [1.0]  # the running job was stopped at once; the other never ran
        assert (
            "jobs 'jobs' is stopping with 2 jobs not done (reason: 'shutdown'): "
            "they are lost (jobs live in memory only)"
        ) in caplog.text
        assert whereis("jobs") is None

    await node.run(body)


async def test_bad_input_is_refused_clearly(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(UnknownJobsError, match="unknown jobs runner 'nope'"):
            await enqueue("nope", "q", trio.sleep, 0)
        with pytest.raises(TypeError, match="non-empty dict"):
            await Jobs.start_link("jobs", queues={})
        with pytest.raises(ValueError, match="job queue 'q': concurrency must be an int >= 1"):
            await Jobs.start_link("jobs", queues={"q": 0})
        with pytest.raises(ValueError, match="max_pending must be an int >= 0"):
            await Jobs.start_link("jobs", queues={"q": 1}, max_pending=-1)
        with pytest.raises(TypeError, match="on_failure must be a function"):
            await Jobs.start_link("jobs", queues={"q": 1}, on_failure="log")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="seed must be an int, a float, a str, bytes or None"):
            await Jobs.start_link("jobs", queues={"q": 1}, seed=[1])  # type: ignore[arg-type]
        await Jobs.start_link("jobs", queues={"q": 1})
        with pytest.raises(UnknownQueueError, match=r"no job queue 'sms'; the queues are \['q'\]"):
            await enqueue("jobs", "sms", trio.sleep, 0)
        with pytest.raises(TypeError, match="async function"):
            await enqueue("jobs", "q", print, "hello")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_attempts must be an int >= 1, not 0"):
            await enqueue("jobs", "q", trio.sleep, 0, max_attempts=0)
        with pytest.raises(ValueError, match="backoff must be a number of seconds >= 0"):
            await enqueue("jobs", "q", trio.sleep, 0, backoff=-1)
        with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
            await enqueue("jobs", "q", trio.sleep, 0, timeout=0)
        with pytest.raises(TypeError, match="a jobs runner is a name or a pid"):
            await enqueue(3, "q", trio.sleep, 0)  # type: ignore[arg-type]
        assert (await Jobs.stats("jobs"))["q"] == QueueStats(limit=1)

    await node.run(body)


async def test_the_runner_survives_malformed_input(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        runner = await Jobs.start_link("jobs", queues={"q": 1})
        with caplog.at_level(logging.WARNING, logger="beamlet.apps.pool"):
            answer = await call("jobs", ("enqueue", "q", "not callable", (), 1, 1.0, None))
            assert answer[:2] == ("beamlet.jobs.refused", "malformed")
            await call("jobs", "junk")
            cast("jobs", "junk")
            send(runner, ("retry", "x"))
            send(runner, ("timeout", 3))
            send(runner, Exit("forged"))
        assert "jobs 'jobs' refused a malformed call" in caplog.text
        await enqueue("jobs", "q", trio.sleep, 0)
        await Jobs.drain("jobs")
        assert (await Jobs.stats("jobs"))["q"].succeeded == 1

    await node.run(body)
