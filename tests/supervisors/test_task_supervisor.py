"""TaskSupervisor (S25, S26)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from beamlet.actors import (
    Down,
    Exit,
    Node,
    Pid,
    Task,
    TaskExitError,
    TaskTimeoutError,
    monitor,
    process_info,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    trap_exits,
)
from beamlet.supervisors import ChildInfo, Supervisor, SupervisorError, TaskSupervisor


async def double(x: int) -> int:
    return 2 * x


async def fail(reason: Any) -> None:
    raise Exit(reason)


async def sleepy(seconds: float, value: Any) -> Any:
    await trio.sleep(seconds)
    return value


async def wait_down(ref: Any) -> Down:
    msg: Down = await receive(lambda m: type(m) is Down and m.ref == ref)
    return msg


async def test_S25_async_nolink(node: Node) -> None:
    async def body() -> None:
        sup = await TaskSupervisor.start_link(name="tasks")
        task = await TaskSupervisor.async_nolink("tasks", double, 21)
        assert isinstance(task, Task)
        assert await task.join() == 42
        failing = await TaskSupervisor.async_nolink(sup, fail, "boom")
        with pytest.raises(TaskExitError) as info:
            await failing.join()
        assert info.value.reason == "boom"  # and the caller is still alive
        assert await TaskSupervisor.children(sup) == []

    await node.run(body)


async def test_S25_async_task_is_linked_to_the_caller(node: Node) -> None:
    async def caller(sup: Pid, parent: Pid) -> None:
        task = await TaskSupervisor.async_task(sup, fail, "boom")
        send(parent, "started")
        await task.join()

    async def body() -> None:
        trap_exits(True)
        sup = await TaskSupervisor.start_link()
        # A non-trapping caller dies with its task's reason...
        pid = spawn(caller, sup, self_pid())
        ref = monitor(pid)
        assert (await wait_down(ref)).reason == "boom"
        # ...a trapping one sees TaskExitError.
        task = await TaskSupervisor.async_task(sup, fail, "bang")
        with pytest.raises(TaskExitError) as info:
            await task.join()
        assert info.value.reason == "bang"
        # And the task dies with its caller.
        parent = self_pid()

        async def holder() -> None:
            task = await TaskSupervisor.async_task(sup, sleepy, 1000.0, None)
            send(parent, ("task", task.pid))
            await receive()
            raise Exit("gone")

        pid = spawn(holder)
        _, task_pid = await receive(lambda m: type(m) is tuple and m[0] == "task")
        task_ref = monitor(task_pid)
        send(pid, "go")
        assert (await wait_down(task_ref)).reason == "gone"

    await node.run(body)


async def test_S25_tasks_are_temporary_children(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        sup = await TaskSupervisor.start_link()
        task = await TaskSupervisor.async_nolink(sup, sleepy, 1.0, "done")
        assert await TaskSupervisor.which_children(sup) == [ChildInfo(None, task.pid, "worker")]
        assert await task.join() == "done"
        ref = monitor(task.pid)
        await wait_down(ref)
        assert await TaskSupervisor.children(sup) == []
        assert (await TaskSupervisor.count_children(sup)).specs == 0

    await node.run(body)


async def test_S25_start_child_fire_and_forget(node: Node) -> None:
    async def report(parent: Pid, value: Any) -> None:
        send(parent, ("ran", self_pid(), value))

    async def crash_once(parent: Pid, seen: list[int]) -> None:
        seen.append(1)
        send(parent, ("run", len(seen)))
        if len(seen) == 1:
            raise Exit("boom")
        await receive()

    async def body() -> None:
        sup = await TaskSupervisor.start_link()
        pid = await TaskSupervisor.start_child(sup, report, self_pid(), 7)
        assert await receive() == ("ran", pid, 7)
        # restart can be overridden: a transient task is restarted after a crash.
        seen: list[int] = []
        await TaskSupervisor.start_child(sup, crash_once, self_pid(), seen, restart="transient")
        assert await receive() == ("run", 1)
        assert await receive() == ("run", 2)

    await node.run(body)


async def test_S26_join_poll_timeout_and_shutdown(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        sup = await TaskSupervisor.start_link()
        task = await TaskSupervisor.async_nolink(sup, sleepy, 10.0, "late")
        start = trio.current_time()
        with pytest.raises(TaskTimeoutError):
            await task.join(timeout=2.0)
        assert trio.current_time() == start + 2.0
        assert await task.poll(1.0) is None
        assert await task.join(timeout=None) == "late"
        assert trio.current_time() == start + 10.0
        other = await TaskSupervisor.async_nolink(sup, sleepy, 10.0, "never")
        assert other.shutdown() is None
        info = process_info(other.pid)
        assert info is None or info.status == "exiting"

    await node.run(body)


async def test_stopping_the_supervisor_stops_its_tasks(node: Node, autojump_clock: Any) -> None:
    async def body() -> None:
        trap_exits(True)
        sup = await TaskSupervisor.start_link(max_children=2)
        tasks = [await TaskSupervisor.async_nolink(sup, sleepy, 1000.0, i) for i in range(2)]
        with pytest.raises(SupervisorError) as info:
            await TaskSupervisor.async_nolink(sup, double, 1)
        assert info.value.reason == "max_children"
        ref = monitor(sup)
        send_exit(sup, "shutdown")
        await wait_down(ref)
        for task in tasks:
            with pytest.raises(TaskExitError) as exit_info:
                await task.join()
            assert exit_info.value.reason == "shutdown"

    await node.run(body)


async def test_task_supervisor_in_a_tree(node: Node) -> None:
    async def body() -> None:
        await Supervisor.start_link([TaskSupervisor.child_spec(name="jobs")])
        task = await TaskSupervisor.async_nolink("jobs", double, 4)
        assert await task.join() == 8
        with pytest.raises(TypeError):
            await TaskSupervisor.async_nolink("jobs", "not a function")  # type: ignore[arg-type]

    await node.run(body)
