"""Tasks: run a function in a process and collect its result, as Elixir's Task does.

``async_task(fn, *args)`` starts ``fn`` in a new process linked to and
monitored by the caller. ``await task.join()`` returns its result. A task that
crashes takes its owner down through the link unless the owner traps exits;
a trapping owner sees ``TaskExitError`` from ``join``/``poll``.

``async_stream(fn, items, ...)`` maps ``fn`` over ``items`` with bounded
concurrency, each call in its own task.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio
from trio.lowlevel import checkpoint_if_cancelled

from ._context import current_process
from ._errors import describe_reason
from ._ids import Pid, Ref
from ._messages import Down, ExitSignal
from ._node import check_async
from ._process import DROP_ON_REPLY, Process, Reply, expect_reply
from ._timers import TIMED_OUT
from ._util import check_number, check_timeout

__all__ = [
    "AsyncStream",
    "Task",
    "TaskExitError",
    "TaskTimeoutError",
    "adopt_task",
    "async_stream",
    "async_task",
]


class TaskTimeoutError(trio.TooSlowError):
    """The task did not finish within the timeout."""


class TaskExitError(Exception):
    """The task exited without a result.

    The message says which task and why, e.g. ``task <nonode@nohost.7>
    exited without a result: it crashed with ValueError: boom``.

    Attributes:
        reason: the task's exit reason.
        pid: the task's pid, or None if not known.
    """

    def __init__(self, reason: Any, pid: Pid | None = None) -> None:
        which = f"task {pid!r}" if pid is not None else "the task"
        message = f"{which} exited without a result: it {describe_reason(reason)}"
        if not isinstance(reason, BaseException):
            message += f" (reason: {reason!r})"
        super().__init__(message)
        self.reason = reason
        self.pid = pid


async def _run_task(
    owner: Pid, ref: Ref, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
) -> None:
    result = await fn(*args)
    current_process().node.send(None, owner, Reply(ref, result))


class Task:
    """A running task, owned by the process that started it.

    Attributes:
        pid: the task's process.
        ref: its monitor reference (also the tag of its result).
    """

    __slots__ = ("_done", "_owner", "pid", "ref")

    def __init__(self, owner: Process, pid: Pid, ref: Ref) -> None:
        self._owner = owner
        self._done = False
        self.pid = pid
        self.ref = ref

    def __repr__(self) -> str:
        return f"<Task {self.pid!r}>"

    def _match(self, msg: Any) -> bool:
        kind = type(msg)
        return (kind is Reply or kind is Down) and msg.ref == self.ref

    def _check_owner(self) -> Process:
        proc = current_process()
        if proc is not self._owner:
            raise RuntimeError(f"{self!r} belongs to {self._owner.pid!r}, not to {proc.pid!r}")
        if self._done:
            raise RuntimeError(f"{self!r} has already been joined or shut down")
        return proc

    def _finish(self, proc: Process, msg: Any) -> Any:
        self._done = True
        if proc.aliases is not None:
            proc.aliases.discard(self.ref)
        if type(msg) is Reply:
            proc.node.demonitor(proc, self.ref, flush=True)
            return msg.value
        raise TaskExitError(msg.reason, self.pid)

    async def _wait(self, timeout: float | None) -> Any:
        """The task's Reply or Down: from the mailbox, or waited for (``TIMED_OUT``)."""
        proc = self._check_owner()
        await checkpoint_if_cancelled()
        msg = proc.take(self._match)
        if msg is not None:
            return msg
        # Any task of the owner may wait; the Reply or Down goes straight to it.
        waiter = expect_reply(proc, (self.ref,), monitor=DROP_ON_REPLY)
        return await waiter.wait(timeout)

    async def join(self, timeout: float | None = 5.0) -> Any:
        """Wait for the task's result.

        Any task of the owning process may join (one at a time per task).

        Args:
            timeout: seconds to wait (``None``: forever).

        Raises:
            TaskTimeoutError: not done in time (the task keeps running).
            TaskExitError: the task exited without a result.
            RuntimeError: another task of the owner is already joining it.

        Cancellation:
            A checkpoint; the task keeps running.
        """
        check_timeout(timeout)
        msg = await self._wait(timeout)
        if msg is TIMED_OUT:
            raise TaskTimeoutError(f"{self!r} did not finish within {timeout} s")
        return self._finish(self._owner, msg)

    async def poll(self, timeout: float = 0) -> Any:
        """Return the result if the task finishes within ``timeout``, else None.

        Raises:
            TaskExitError: the task exited without a result.
        """
        check_timeout(timeout)
        msg = await self._wait(timeout)
        if msg is TIMED_OUT:
            return None
        return self._finish(self._owner, msg)

    def shutdown(self) -> Any:
        """Kill the task (unlinked first, so the owner survives).

        Returns:
            The result if it had already arrived, else None.
        """
        proc = self._check_owner()
        node = proc.node
        node.unlink(proc, self.pid)
        node.exit_signal(proc.pid, self.pid, "kill", link=False)
        proc.take(lambda m: type(m) is ExitSignal and m.pid == self.pid)
        msg = proc.take(lambda m: type(m) is Reply and m.ref == self.ref)
        self._done = True
        if proc.aliases is not None:
            proc.aliases.discard(self.ref)
        node.demonitor(proc, self.ref, flush=True)
        return msg.value if msg is not None else None


def async_task(fn: Callable[..., Awaitable[Any]], *args: Any) -> Task:
    """Run ``fn(*args)`` in a new process linked to and monitored by the caller.

    Returns:
        A ``Task``; only the caller may ``join``, ``poll`` or ``shutdown`` it.
    """
    check_async(fn)
    proc = current_process()
    node = proc.node
    ref = node.make_ref()
    child = node.spawn_process(_run_task, (proc.pid, ref, fn, args), link_to=proc)
    if proc.aliases is None:
        proc.aliases = set()
    proc.aliases.add(ref)
    node.monitor(proc, child.pid, ref=ref)
    return Task(proc, child.pid, ref)


def adopt_task(pid: Pid) -> Task:
    """A ``Task`` owned by the calling process, for the existing process ``pid``.

    For libraries that start task processes their own way (``TaskSupervisor``
    does): the caller gets a reply alias and a monitor of ``pid``, both
    tagged ``task.ref``. The task process delivers its result with
    ``send_reply(owner, task.ref, value)``; ``join``, ``poll`` and
    ``shutdown`` then work as for ``async_task``. Linking is left to the
    caller. If ``pid`` is not alive, ``join`` raises ``TaskExitError("noproc")``.

    Raises:
        NotInProcessError: called outside a process.
        TypeError: ``pid`` is not a ``Pid``.
    """
    if not isinstance(pid, Pid):
        raise TypeError(f"adopt_task() needs a Pid, not {pid!r}")
    proc = current_process()
    node = proc.node
    ref = node.make_ref()
    if proc.aliases is None:
        proc.aliases = set()
    proc.aliases.add(ref)
    node.monitor(proc, pid, ref=ref)
    return Task(proc, pid, ref)


class AsyncStream:
    """The async iterator ``async_stream`` returns; close it to kill running tasks."""

    def __init__(
        self,
        fn: Callable[..., Awaitable[Any]],
        items: Iterable[Any],
        max_concurrency: int,
        ordered: bool,
        timeout: float | None,
    ) -> None:
        check_async(fn)
        check_number(max_concurrency, "max_concurrency", minimum=1, integer=True)
        check_timeout(timeout)
        self._fn = fn
        self._items = iter(items)
        self._max = max_concurrency
        self._ordered = ordered
        self._timeout = timeout
        # ref -> (index of the item, task, deadline); oldest first
        self._running: dict[Ref, tuple[int, Task, float]] = {}
        self._ready: dict[int, Any] = {}
        self._next_index = 0  # next item to start
        self._next_out = 0  # next result to yield when ordered
        self._exhausted = False

    def __aiter__(self) -> AsyncStream:
        return self

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _fill(self) -> None:
        while not self._exhausted and len(self._running) < self._max:
            try:
                item = next(self._items)
            except StopIteration:
                self._exhausted = True
                return
            task = async_task(self._fn, item)
            deadline = math.inf if self._timeout is None else trio.current_time() + self._timeout
            self._running[task.ref] = (self._next_index, task, deadline)
            self._next_index += 1

    async def __anext__(self) -> Any:
        proc = current_process()
        while True:
            self._fill()
            if self._ordered and self._next_out in self._ready:
                self._next_out += 1
                return self._ready.pop(self._next_out - 1)
            if not self._ordered and self._ready:
                return self._ready.pop(next(iter(self._ready)))
            if not self._running:
                raise StopAsyncIteration
            running = self._running

            def match(msg: Any, running: dict[Ref, tuple[int, Task, float]] = running) -> bool:
                kind = type(msg)
                return (kind is Reply or kind is Down) and msg.ref in running

            timeout = None
            if self._timeout is not None:
                # Every task gets the same time: the oldest one is due first.
                oldest = next(iter(running.values()))[2]
                timeout = max(0.0, oldest - trio.current_time())
            await checkpoint_if_cancelled()
            msg = proc.take(match)
            if msg is None:
                # Wait in this task, whichever task of the process iterates.
                waiter = expect_reply(proc, tuple(running), monitor=DROP_ON_REPLY)
                msg = await waiter.wait(timeout)
            if msg is TIMED_OUT:
                await self.aclose()
                raise TaskTimeoutError(
                    f"a task of the stream did not finish within {self._timeout} s"
                )
            index, task, _deadline = running.pop(msg.ref)
            try:
                value = task._finish(proc, msg)
            except TaskExitError:
                await self.aclose()
                raise
            self._ready[index] = value

    async def aclose(self) -> None:
        """Kill the tasks still running and stop the stream."""
        for _index, task, _deadline in self._running.values():
            task.shutdown()
        self._running.clear()
        self._exhausted = True
        await trio.lowlevel.checkpoint()


def async_stream(
    fn: Callable[..., Awaitable[Any]],
    items: Iterable[Any],
    *,
    max_concurrency: int | None = None,
    ordered: bool = True,
    timeout: float | None = 5.0,
) -> AsyncStream:
    """Map ``fn`` over ``items``, each call in its own task, at most ``max_concurrency`` at once.

    Use as ``async for result in async_stream(fn, items): ...``.

    Args:
        fn: an async function of one item.
        items: an iterable, consumed lazily.
        max_concurrency: tasks running at once (default: the number of CPUs).
        ordered: yield results in the order of ``items`` (else as they finish).
        timeout: seconds each task may run (``None``: no limit).

    Raises:
        TaskTimeoutError: a task ran longer than ``timeout`` (all the tasks
            still running are killed).
        TaskExitError: a task exited without a result (only seen when trapping
            exits; otherwise the link takes the caller down with it).
    """
    if max_concurrency is None:
        max_concurrency = os.cpu_count() or 1
    return AsyncStream(fn, items, max_concurrency, ordered, timeout)
