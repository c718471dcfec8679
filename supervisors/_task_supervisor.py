"""TaskSupervisor: a dynamic supervisor for tasks (Elixir's ``Task.Supervisor``).

Tasks started through it are its children, so they are stopped with it and
show up in its counts, while their results go to the process that asked.

Example::

    from beamlet.actors import run
    from beamlet.supervisors import TaskSupervisor

    async def double(x):
        return 2 * x

    async def main():
        sup = await TaskSupervisor.start_link(name="tasks")
        task = await TaskSupervisor.async_nolink("tasks", double, 21)
        return await task.join()

    assert run(main) == 42

Three ways to start a task (S25):

- ``async_task``: linked to the caller *and* monitored by it; if the task
  crashes, the caller dies with it unless it traps exits (then ``join``
  raises ``TaskExitError``).
- ``async_nolink``: monitored only; the caller survives a crash and ``join``
  raises ``TaskExitError(reason)``. Use it for work that may fail.
- ``start_child``: fire and forget; nothing comes back.

Both ``async_*`` return a ``beamlet.actors.Task`` owned by the caller:
``await task.join(timeout)``, ``await task.poll(timeout)``, ``task.shutdown()``.
The tasks are ``"temporary"`` children (a restart would lose their caller's
reference) with a default shutdown of 5 seconds.

When not to use it: for results you need even if the caller dies (store them
elsewhere); for a long-lived service (use a ``GenServer`` under a ``Supervisor``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from beamlet.actors import Pid, Task, link, receive, self_pid, send
from beamlet.actors.lowlevel import adopt_task, send_reply

from ._common import ChildCounts, ChildInfo, SupRef
from ._dynamic import DynamicSupervisor
from ._spec import ChildSpec, Restart, Shutdown, SpawnLink, check_shutdown

__all__ = ["TaskSupervisor"]


class _Go:
    """Tells a supervised task who owns it; it runs only then."""

    __slots__ = ("owner", "ref")

    def __init__(self, owner: Pid, ref: Any) -> None:
        self.owner = owner
        self.ref = ref


def _is_go(msg: object) -> bool:
    return type(msg) is _Go


async def _supervised_task(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
    go: _Go = await receive(_is_go)
    result = await fn(*args)
    send_reply(go.owner, go.ref, result)


def _check_fn(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"a task runs an async function, not {fn!r}")


class TaskSupervisor:
    __doc__ = __doc__  # the behaviour's documentation (the module docstring above)

    @staticmethod
    async def start_link(
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
    ) -> Pid:
        """Start a task supervisor linked to the calling process.

        Args:
            max_children: most tasks at once (``None``: no limit).
            max_restarts, max_seconds: the restart intensity (only tasks
                started with ``start_child(..., restart=...)`` restart).
            name: register the supervisor under this name.

        Raises:
            TypeError / ValueError: an invalid option.
            StartError: the name is taken.
        """
        return await DynamicSupervisor.start_link(max_children, max_restarts, max_seconds, name)

    @staticmethod
    def child_spec(
        *,
        id: Hashable = None,
        name: str | None = None,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        restart: Restart = "permanent",
        shutdown: Shutdown = "infinity",
    ) -> ChildSpec:
        """The spec that runs a task supervisor under another supervisor.

        Args:
            id: the child id (default: ``TaskSupervisor``).
            name, max_children, max_restarts, max_seconds: as for ``start_link``.
            restart, shutdown: as in the parent (defaults ``"permanent"``, ``"infinity"``).
        """
        return DynamicSupervisor.child_spec(
            id=TaskSupervisor if id is None else id,
            name=name,
            max_children=max_children,
            max_restarts=max_restarts,
            max_seconds=max_seconds,
            restart=restart,
            shutdown=shutdown,
        )

    @staticmethod
    async def async_task(
        sup: SupRef, fn: Callable[..., Awaitable[Any]], *args: Any, shutdown: Shutdown = 5.0
    ) -> Task:
        """Run ``fn(*args)`` as a child of ``sup``, linked to and monitored by the caller.

        Args:
            sup: the task supervisor.
            fn: an async function; its return value is the task's result.
            *args: its arguments.
            shutdown: how long the supervisor waits for the task when it stops.

        Returns:
            A ``Task`` owned by the caller.

        Raises:
            SupervisorError: ``"max_children"``, ``"noproc"``.
        """
        return await _start_task(sup, fn, args, shutdown, linked=True)

    @staticmethod
    async def async_nolink(
        sup: SupRef, fn: Callable[..., Awaitable[Any]], *args: Any, shutdown: Shutdown = 5.0
    ) -> Task:
        """Run ``fn(*args)`` as a child of ``sup``, monitored (not linked) by the caller.

        ``join`` returns the result, or raises ``TaskExitError(reason)`` if the
        task exited without one; the caller is never taken down by the task.

        Raises:
            SupervisorError: ``"max_children"``, ``"noproc"``.
        """
        return await _start_task(sup, fn, args, shutdown, linked=False)

    @staticmethod
    async def start_child(
        sup: SupRef,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        restart: Restart = "temporary",
        shutdown: Shutdown = 5.0,
    ) -> Pid:
        """Run ``fn(*args)`` as a child of ``sup`` and forget about it.

        Args:
            restart: ``"temporary"`` by default; ``"transient"`` or
                ``"permanent"`` to have the supervisor restart it.
            shutdown: how long the supervisor waits for it when it stops.

        Returns:
            The task's pid.

        Raises:
            SupervisorError: ``"max_children"``, ``"noproc"``.
        """
        _check_fn(fn)
        spec = ChildSpec(fn, SpawnLink(fn), args=args, restart=restart, shutdown=shutdown)
        pid = await DynamicSupervisor.start_child(sup, spec)
        assert isinstance(pid, Pid)
        return pid

    @staticmethod
    async def children(sup: SupRef) -> list[Pid]:
        """The pids of the running tasks."""
        return [
            c.pid for c in await DynamicSupervisor.which_children(sup) if isinstance(c.pid, Pid)
        ]

    @staticmethod
    async def terminate_child(sup: SupRef, pid: Pid) -> None:
        """Stop the task ``pid``.

        Raises:
            SupervisorError: ``"not_found"``, ``"noproc"``.
        """
        await DynamicSupervisor.terminate_child(sup, pid)

    @staticmethod
    async def which_children(sup: SupRef) -> list[ChildInfo]:
        """As ``DynamicSupervisor.which_children``."""
        return await DynamicSupervisor.which_children(sup)

    @staticmethod
    async def count_children(sup: SupRef) -> ChildCounts:
        """As ``DynamicSupervisor.count_children``."""
        return await DynamicSupervisor.count_children(sup)


async def _start_task(
    sup: SupRef,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    shutdown: Shutdown,
    *,
    linked: bool,
) -> Task:
    _check_fn(fn)
    check_shutdown(shutdown, "shutdown")
    spec = ChildSpec(
        fn,
        SpawnLink(_supervised_task),
        args=(fn, args),
        restart="temporary",
        shutdown=shutdown,
    )
    pid = await DynamicSupervisor.start_child(sup, spec)
    assert isinstance(pid, Pid)
    if linked:
        link(pid)
    task = adopt_task(pid)
    send(pid, _Go(self_pid(), task.ref))
    return task
