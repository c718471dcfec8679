"""Jobs: fire-and-forget work with retries, bounded per queue. In memory only.

A ``Jobs`` runner takes jobs (an async function and its arguments) into
named queues and runs them as supervised tasks, at most ``limit`` at once
per queue. A job that crashes is run again after an exponential backoff
with jitter, up to ``max_attempts`` attempts; a job that fails its last
attempt is logged and handed to an optional ``on_failure`` handler.

Example::

    from beamlet.actors import run
    from beamlet.apps.pool import Jobs, enqueue

    sent = []

    async def send_email(to):
        sent.append(to)

    async def main():
        await Jobs.start_link("jobs", queues={"email": 10})
        for to in ("ada@example.com", "grace@example.com"):
            await enqueue("jobs", "email", send_email, to)
        await Jobs.drain("jobs")
        print(sorted(sent))

    run(main)

**Jobs live in memory only.** A job that is waiting, running or waiting
for its retry is lost if the node stops or dies, or if the runner is
restarted. This suits work that may be lost, or redone by someone else:
notifications, cache warming, best-effort webhooks. Work that must not be
lost (payments, orders, anything a user was promised) belongs in a
persistent queue: a database table with Oban-style workers, a Redis stream
with consumer groups, or a message broker, which record each job before
acknowledging it.

Retries (Oban's model): attempt ``n`` that fails is retried after
``backoff * 2 ** (n - 1)`` seconds (``backoff`` defaults to 1.0: 1, 2, 4,
8 s, ...), at most ``max_backoff`` (default 300 s), plus a random 0 to
``jitter`` (default 10 %) of that, so that jobs that failed together do not
retry together. ``backoff`` may instead be a function of the attempt
number returning seconds (then no jitter is added). A job *fails* when its
function raises or its task exits with any reason but ``"normal"``, or
when it runs past its ``timeout`` (it is killed; the reason is
``"timeout"``). A retry holds no slot while it waits; when its time comes
it joins the back of its queue.

Concurrency and bounds: each queue runs at most its ``limit`` jobs at once;
more wait in the queue, first in first out, at most ``max_pending`` per queue
(default 10,000): past that, ``enqueue`` raises ``JobQueueFullError`` and
the job is not taken, so that memory stays bounded when producers outrun
the work.

Final failures: logged at ERROR on ``beamlet.apps.pool``, then, if
``on_failure`` is given, passed to it as a ``JobFailure`` (in a task of its
own, so that a slow or failing handler cannot hold up the runner).

Structure: the runner is a GenServer (``Jobs.start_link``) that owns the
queues and a ``TaskSupervisor`` linked to it, under which every attempt
runs as a task. Stopping the runner stops the running jobs (each gets the
``"shutdown"`` exit signal, then is killed after 5 s), and drops the others;
``Jobs.drain`` first waits for every job to be done.

When not to use it: for work whose result the caller awaits (use
``async_task``/``TaskSupervisor.async_nolink``); for work that must survive
the node (see above).
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, TypeAlias

import attrs
from beamlet.actors import (
    CallExitError,
    Down,
    ExitSignal,
    From,
    GenServer,
    NoReply,
    Pid,
    Ref,
    StartError,
    Stop,
    call,
    cancel_timer,
    demonitor,
    reply,
    self_pid,
    send_after,
    send_exit,
    stop,
    trap_exits,
    whereis,
)
from beamlet.actors.lowlevel import (
    BadInputLog,
    NodeVar,
    Reply,
    check_async,
    check_number,
    check_timeout,
    describe_reason,
    short_repr,
    unalias,
)
from beamlet.cluster import message
from beamlet.supervisors import ChildSpec, Restart, TaskSupervisor

from ._errors import JobQueueFullError, UnknownJobsError, UnknownQueueError
from ._jobs_state import JobQueues, QueueFull, QueueStats, backoff_delay, check_queues

__all__ = ["JobFailure", "Jobs", "JobsRef", "enqueue"]

logger = logging.getLogger("beamlet.apps.pool")

#: How to address a jobs runner on this node: its name or its pid.
JobsRef: TypeAlias = "str | Pid"

#: The runners on each node: pid -> name (or None).
_RUNNERS: NodeVar[str | None] = NodeVar("beamlet.apps.pool.jobs")

_REFUSED = "beamlet.jobs.refused"

message(name="beamlet/pool.QueueStats")(QueueStats)


@attrs.frozen
class JobFailure:
    """A job that failed its last attempt, as ``on_failure`` receives it.

    Attributes:
        id: the job's id (what ``enqueue`` returned).
        queue: its queue.
        fn: its function.
        args: its arguments.
        attempts: how many times it ran.
        reason: how its last attempt ended: the exception it raised, an exit
            reason, or ``"timeout"``.
    """

    id: int
    queue: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    attempts: int
    reason: Any


class _Job:
    __slots__ = (
        "args",
        "attempt",
        "backoff",
        "fn",
        "id",
        "max_attempts",
        "pid",
        "queue",
        "timed_out",
        "timeout",
        "timer",
    )

    def __init__(
        self,
        id: int,
        queue: str,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        max_attempts: int,
        backoff: float | Callable[[int], float],
        timeout: float | None,
    ) -> None:
        self.id = id
        self.queue = queue
        self.fn = fn
        self.args = args
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        self.attempt = 0
        self.pid: Pid | None = None
        self.timer: Ref | None = None
        self.timed_out = False


def _check_job_options(max_attempts: object, backoff: object, timeout: object) -> None:
    check_number(max_attempts, "max_attempts", minimum=1, integer=True)
    if not callable(backoff):
        check_number(backoff, "backoff", finite=True, unit="seconds")
    if timeout is not None:
        check_number(timeout, "timeout", strict=True, unit="seconds")


def _well_formed_enqueue(request: tuple[Any, ...]) -> bool:
    if len(request) != 7:
        return False
    _, queue, fn, args, max_attempts, backoff, timeout = request
    if type(queue) is not str or not callable(fn) or type(args) is not tuple:
        return False
    try:
        _check_job_options(max_attempts, backoff, timeout)
    except (TypeError, ValueError):
        return False
    return True


class _Timer:
    """A runner's own timer message: ``"timeout"`` of an attempt (by its task's ref) or
    ``"retry"`` of a job (by its id).

    A class the codec does not know, so no other node can send one: a plain
    ``("timeout", ref)`` tuple from a peer could kill a running attempt (refs
    are easy to guess) and make the job fail.
    """

    __slots__ = ("key", "kind")

    def __init__(self, kind: str, key: Any) -> None:
        self.kind = kind
        self.key = key

    def __repr__(self) -> str:
        return f"<jobs {self.kind} timer {self.key!r}>"


class _Runner(GenServer):
    """The jobs runner: queues, retries and the task supervisor of the attempts."""

    async def init(
        self,
        name: str | None,
        limits: dict[str, int],
        max_pending: int,
        on_failure: Callable[[JobFailure], Any] | None,
        max_backoff: float,
        jitter: float,
        seed: int | float | str | bytes | None,
    ) -> None:
        trap_exits(True)
        self.runner_name = name
        self.bad_input = BadInputLog(f"jobs {name or self_pid()!r}", logger)
        self.queues = JobQueues(limits, max_pending)
        self.on_failure = on_failure
        self.max_backoff = max_backoff
        self.jitter = jitter
        self.random = random.Random(seed)
        self.jobs: dict[Hashable, _Job] = {}
        self.running: dict[Ref, _Job] = {}
        self.next_id = 1
        self.drainers: list[From] = []
        self.sup = await TaskSupervisor.start_link()
        _RUNNERS.set(name, key=self_pid())

    # -- requests -----------------------------------------------------------------------

    async def handle_call(self, request: Any, caller: From) -> Any:
        if type(request) is tuple and request:
            tag = request[0]
            if tag == "enqueue" and _well_formed_enqueue(request):
                return await self.enqueue(request)
            if tag == "stats" and len(request) == 1:
                return self.queues.stats()
            if tag == "drain" and len(request) == 1:
                if self.queues.idle():
                    return True
                self.drainers.append(caller)
                return NoReply
        self.bad_input.report("call", request)
        return (_REFUSED, "malformed", short_repr(request))

    async def enqueue(self, request: tuple[Any, ...]) -> Any:
        _, queue, fn, args, max_attempts, backoff, timeout = request
        if queue not in self.queues:
            return (_REFUSED, "unknown_queue", self.queues.names())
        job = _Job(self.next_id, queue, fn, args, max_attempts, backoff, timeout)
        try:
            start = self.queues.submit(queue, job.id)
        except QueueFull:
            return (_REFUSED, "full", self.queues.max_pending)
        self.next_id += 1
        self.jobs[job.id] = job
        for job_id in start:
            await self.run_job(self.jobs[job_id])
        return job.id

    async def run_job(self, job: _Job) -> None:
        job.attempt += 1
        job.timed_out = False
        task = await TaskSupervisor.async_nolink(self.sup, _attempt, job.fn, job.args)
        job.pid = task.pid
        self.running[task.ref] = job
        if job.timeout is not None:
            job.timer = send_after(job.timeout, self_pid(), _Timer("timeout", task.ref))

    # -- outcomes -----------------------------------------------------------------------

    async def handle_info(self, msg: Any) -> Any:
        kind = type(msg)
        if kind is Reply or kind is Down:
            job = self.running.pop(msg.ref, None)
            if job is not None:
                unalias(msg.ref)
                if kind is Reply:
                    demonitor(msg.ref, flush=True)
                    error = msg.value
                    if error is None:
                        await self.ended(job, "succeeded", None)
                    else:
                        await self.ended(job, "failed", error)
                else:
                    await self.ended(job, "failed", "timeout" if job.timed_out else msg.reason)
                return None
        elif kind is _Timer:
            tag, key = msg.kind, msg.key
            if tag == "timeout":
                job = self.running.get(key)
                if job is not None and job.pid is not None:
                    job.timer = None
                    job.timed_out = True
                    send_exit(job.pid, "kill")
                return None
            if tag == "retry":
                job = self.jobs.get(key)
                if job is not None and job.pid is None:
                    for job_id in self.queues.due(job.queue, job.id):
                        await self.run_job(self.jobs[job_id])
                return None
        elif kind is ExitSignal and msg.pid == self.sup:
            return Stop(("shutdown", ("task_supervisor_down", msg.reason)))
        self.bad_input.report("message", msg, "unexpected")
        return None

    async def ended(self, job: _Job, outcome: str, reason: Any) -> None:
        job.pid = None
        if job.timer is not None:
            cancel_timer(job.timer)
            job.timer = None
        if outcome == "failed":
            if job.attempt < job.max_attempts:
                outcome = "retry"
                delay = self.delay(job)
                send_after(delay, self_pid(), _Timer("retry", job.id))
                logger.warning(
                    "job %d (%s) of queue %r: attempt %d of %d failed (it %s); retrying in %.3g s",
                    job.id,
                    _name(job.fn),
                    job.queue,
                    job.attempt,
                    job.max_attempts,
                    _describe(reason),
                    delay,
                    extra={"beamlet_job": job.id, "beamlet_reason": reason},
                )
            else:
                await self.give_up(job, reason)
        if outcome != "retry":
            del self.jobs[job.id]
        for job_id in self.queues.done(job.queue, job.id, outcome):
            await self.run_job(self.jobs[job_id])
        if self.drainers and self.queues.idle():
            for drainer in self.drainers:
                reply(drainer, True)
            self.drainers = []

    def delay(self, job: _Job) -> float:
        backoff = job.backoff
        if not callable(backoff):
            u = self.random.random()
            return backoff_delay(job.attempt, backoff, self.max_backoff, self.jitter, u)
        try:
            delay = backoff(job.attempt)
            check_number(delay, "the delay a backoff function returns", unit="seconds")
        except Exception as exc:
            logger.error(
                "job %d of queue %r: its backoff function failed (%s); retrying in 1 s",
                job.id,
                job.queue,
                exc,
            )
            return 1.0
        return float(delay)

    async def give_up(self, job: _Job, reason: Any) -> None:
        logger.error(
            "job %d (%s) of queue %r failed after %d attempt%s: it %s",
            job.id,
            _name(job.fn),
            job.queue,
            job.attempt,
            "" if job.attempt == 1 else "s",
            _describe(reason),
            exc_info=reason if isinstance(reason, BaseException) else None,
            extra={"beamlet_job": job.id, "beamlet_reason": reason},
        )
        if self.on_failure is not None:
            failure = JobFailure(job.id, job.queue, job.fn, job.args, job.attempt, reason)
            await TaskSupervisor.start_child(self.sup, _report, self.on_failure, failure)

    async def handle_cast(self, request: Any) -> None:
        self.bad_input.report("cast", request, "unexpected")

    async def terminate(self, reason: Any) -> None:
        lost = len(self.jobs)
        if lost:
            logger.warning(
                "jobs %r is stopping with %d job%s not done (reason: %s): "
                "they are lost (jobs live in memory only)",
                self.runner_name or self_pid(),
                lost,
                "" if lost == 1 else "s",
                short_repr(reason),
            )
        try:
            await stop(self.sup, "shutdown")
        except CallExitError:
            pass  # the task supervisor was already gone


async def _attempt(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Exception | None:
    """One attempt of a job, in its task: None if it returned, else the exception.

    A job that raises is routine (it will be retried), so the task returns
    the exception rather than crash with it: the runner logs one line per
    failed attempt instead of a crash report and a supervisor report.
    Exit signals and ``Exit`` still end the task, and reach the runner as
    its exit reason.
    """
    try:
        await fn(*args)
    except Exception as exc:
        return exc
    return None


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def _describe(reason: Any) -> str:
    return "timed out" if reason == "timeout" else describe_reason(reason)


async def _report(handler: Callable[[JobFailure], Any], failure: JobFailure) -> None:
    result = handler(failure)
    if inspect.isawaitable(result):
        await result


# -- the public API --------------------------------------------------------------------


def _runner_options(
    name: object,
    queues: object,
    max_pending: object,
    on_failure: object,
    max_backoff: object,
    jitter: object,
    seed: object,
) -> tuple[Any, ...]:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"a jobs runner's name must be a str or None, not {name!r}")
    limits = check_queues(queues)
    check_number(max_pending, "max_pending", integer=True)
    if on_failure is not None and not callable(on_failure):
        raise TypeError(f"on_failure must be a function of a JobFailure, not {on_failure!r}")
    check_number(max_backoff, "max_backoff", unit="seconds")
    check_number(jitter, "jitter", finite=True)
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int | float | str | bytes)
    ):
        raise TypeError(f"seed must be an int, a float, a str, bytes or None, not {seed!r}")
    return (name, limits, max_pending, on_failure, max_backoff, jitter, seed)


async def _start(args: tuple[Any, ...]) -> Pid:
    try:
        pid = await _Runner.start_link(*args, name=args[0])
    except StartError as exc:
        raise StartError(exc.reason, "Jobs", args[0]) from None
    assert pid is not None
    return pid


@attrs.frozen
class _StartJobs:
    async def __call__(self, *args: Any) -> Pid:
        return await _start(args)


def _resolve(jobs: object) -> Pid:
    if type(jobs) is str:
        pid = whereis(jobs)
    elif type(jobs) is Pid:
        pid = jobs
    else:
        raise TypeError(f"a jobs runner is a name or a pid, not {jobs!r}")
    if pid is None or _RUNNERS.get(key=pid, default=False) is False:
        raise UnknownJobsError(jobs)
    return pid


async def _call(jobs: JobsRef, request: tuple[Any, ...], timeout: float | None) -> Any:
    try:
        return await call(_resolve(jobs), request, timeout)
    except CallExitError as exc:
        if exc.reason == "noproc":
            raise UnknownJobsError(jobs) from None
        raise


class Jobs:
    __doc__ = __doc__  # the behaviour's documentation (the module docstring above)

    @staticmethod
    async def start_link(
        name: str | None = None,
        *,
        queues: Mapping[str, int],
        max_pending: int = 10_000,
        on_failure: Callable[[JobFailure], Any] | None = None,
        max_backoff: float = 300.0,
        jitter: float = 0.1,
        seed: int | float | str | bytes | None = None,
    ) -> Pid:
        """Start a jobs runner linked to the calling process.

        Args:
            name: register the runner under this name (None: known by pid).
            queues: ``{queue name: most jobs running at once}``.
            max_pending: the most jobs waiting for a slot in one queue.
            on_failure: called with a ``JobFailure`` for each job that failed
                its last attempt (a function or an async function; it runs in
                a task of its own).
            max_backoff: the longest wait before a retry, jitter aside (seconds).
            jitter: the largest fraction of a retry's delay added at random.
            seed: seeds the jitter's random numbers (for reproducible tests).

        Raises:
            TypeError / ValueError: a bad option, named.
            StartError: the name is taken.
        """
        return await _start(
            _runner_options(name, queues, max_pending, on_failure, max_backoff, jitter, seed)
        )

    @staticmethod
    def child_spec(
        name: str | None = None,
        *,
        queues: Mapping[str, int],
        max_pending: int = 10_000,
        on_failure: Callable[[JobFailure], Any] | None = None,
        max_backoff: float = 300.0,
        jitter: float = 0.1,
        seed: int | float | str | bytes | None = None,
        id: Hashable = None,
        restart: Restart = "permanent",
    ) -> ChildSpec:
        """The spec that runs a jobs runner under a supervisor (options as ``start_link``).

        Args:
            id: the child id (default: ``("Jobs", name)``).
            restart: its restart type (default ``"permanent"``).
        """
        args = _runner_options(name, queues, max_pending, on_failure, max_backoff, jitter, seed)
        return ChildSpec(
            ("Jobs", name) if id is None else id,
            _StartJobs(),
            args=args,
            restart=restart,
            shutdown="infinity",
            type="supervisor",
        )

    @staticmethod
    async def stats(jobs: JobsRef, timeout: float | None = 5.0) -> dict[str, QueueStats]:
        """Each queue's counts: ``{name: QueueStats(limit, running, pending, scheduled,
        succeeded, failed, retries)}``.

        Raises:
            UnknownJobsError: no such runner.
        """
        check_timeout(timeout)
        result: dict[str, QueueStats] = await _call(jobs, ("stats",), timeout)
        return result

    @staticmethod
    async def drain(jobs: JobsRef, timeout: float | None = None) -> None:
        """Wait until no job runs, waits, or waits for a retry.

        Jobs enqueued meanwhile are waited for too.

        Raises:
            UnknownJobsError: no such runner.
            CallTimeoutError: not drained within ``timeout`` (the jobs go on).

        Cancellation:
            A checkpoint; the jobs go on.
        """
        check_timeout(timeout)
        await _call(jobs, ("drain",), timeout)

    @staticmethod
    async def stop(jobs: JobsRef, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the runner: running jobs get the ``"shutdown"`` exit signal, the
        others are dropped (and counted in a warning).

        Raises:
            UnknownJobsError: no such runner.
        """
        await stop(_resolve(jobs), reason, timeout)


async def enqueue(
    jobs: JobsRef,
    queue: str,
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    max_attempts: int = 5,
    backoff: float | Callable[[int], float] = 1.0,
    timeout: float | None = None,
) -> int:
    """Hand ``fn(*args)`` to a jobs runner, to run in ``queue`` as soon as it has a slot.

    Returns once the job is accepted (not run): fire and forget.

    Args:
        jobs: the runner's name or pid (a runner of this node).
        queue: one of the runner's queues.
        fn: an async function; the job succeeds when it returns.
        *args: its arguments (kept in memory until the job is done).
        max_attempts: how many times to run it at most (int >= 1).
        backoff: the first retry's delay in seconds (doubling each time), or
            a function of the failed attempt's number returning seconds.
        timeout: seconds an attempt may run before it is killed and counts
            as failed (None: no limit).

    Returns:
        The job's id (an int, unique within the runner).

    Raises:
        UnknownJobsError: no such runner.
        UnknownQueueError: no such queue.
        JobQueueFullError: the queue holds ``max_pending`` waiting jobs
            already; the job was not taken.
        TypeError / ValueError: a bad argument, named.

    Cancellation:
        A checkpoint. If cancelled while the runner takes the job, the job
        may or may not have been taken.
    """
    check_async(fn)
    if not isinstance(queue, str):
        raise TypeError(f"a job queue is named by a str, not {queue!r}")
    _check_job_options(max_attempts, backoff, timeout)
    answer = await _call(
        jobs, ("enqueue", queue, fn, args, max_attempts, backoff, timeout), timeout=None
    )
    if type(answer) is int:
        return answer
    if type(answer) is tuple and len(answer) == 3 and answer[0] == _REFUSED:
        if answer[1] == "unknown_queue":
            raise UnknownQueueError(queue, answer[2])
        if answer[1] == "full":
            raise JobQueueFullError(queue, answer[2])
    raise RuntimeError(f"jobs runner {jobs!r} refused the job: {answer!r}")
