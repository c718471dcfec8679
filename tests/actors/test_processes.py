"""Processes: spawning, ending, identity, introspection, nodes."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from beamlet.actors import (
    LOCAL_NODE_NAME,
    Down,
    Exit,
    Node,
    NoProcError,
    NotInProcessError,
    Pid,
    ProcessInfo,
    ReceiveTimeoutError,
    link,
    monitor,
    open_node,
    process_info,
    processes,
    receive,
    register,
    run,
    self_pid,
    send,
    send_exit,
    spawn,
    spawn_link,
    spawn_monitor,
    trap_exits,
    whereis,
)


async def idle() -> None:
    await receive()


async def test_spawn_runs_the_function_with_its_arguments(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        async def echo(to: Pid, a: int, b: int) -> None:
            send(to, ("sum", self_pid(), a + b))

        pid = spawn(echo, me, 2, 3)
        assert isinstance(pid, Pid)
        assert await receive() == ("sum", pid, 5)

    await node.run(body)


async def test_spawn_returns_before_the_process_runs(node: Node) -> None:
    async def body() -> None:
        started: list[int] = []

        async def child() -> None:
            started.append(1)

        spawn(child)
        assert started == []
        await trio.testing.wait_all_tasks_blocked()
        assert started == [1]

    await node.run(body)


async def test_P23_returning_ends_with_normal(node: Node) -> None:
    async def body() -> None:
        async def quick() -> int:
            return 42

        pid, ref = spawn_monitor(quick)
        assert await receive() == Down(ref, pid, "normal")

    await node.run(body)


async def test_raising_ends_with_the_exception_as_reason(node: Node) -> None:
    async def body() -> None:
        error = ValueError("boom")

        async def crash() -> None:
            raise error

        pid, ref = spawn_monitor(crash)
        down = await receive()
        assert down == Down(ref, pid, error)
        assert down.reason is error

    await node.run(body)


async def test_raising_exit_ends_with_its_reason(node: Node) -> None:
    async def body() -> None:
        async def leave() -> None:
            raise Exit(("shutdown", "done"))

        pid, ref = spawn_monitor(leave)
        assert await receive() == Down(ref, pid, ("shutdown", "done"))

    await node.run(body)


async def test_a_crash_inside_a_nursery_gives_the_leaf_exception(node: Node) -> None:
    async def body() -> None:
        error = KeyError("in a child task")

        async def child_task() -> None:
            raise error

        async def uses_a_nursery() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(child_task)
                await trio.sleep_forever()

        pid, ref = spawn_monitor(uses_a_nursery)
        down = await receive()
        assert down == Down(ref, pid, error)
        assert down.reason is error

    await node.run(body)


async def test_spawn_link_links_both_ways(node: Node) -> None:
    async def body() -> None:
        pid = spawn_link(idle)
        info = process_info(pid)
        assert info is not None
        assert info.links == (self_pid(),)
        mine = process_info(self_pid())
        assert mine is not None
        assert mine.links == (pid,)

    await node.run(body)


async def test_spawn_options_name_and_trap_exits(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle, name="worker", trap_exits=True)
        assert whereis("worker") == pid
        info = process_info(pid)
        assert info is not None
        assert info.trap_exits is True
        assert info.name == "worker"

    await node.run(body)


async def test_spawn_monitor_takes_spawn_options(node: Node) -> None:
    async def body() -> None:
        trap_exits()
        pid, ref = spawn_monitor(idle, name="watched", link=True)
        assert whereis("watched") == pid
        send_exit(pid, "bye")
        # The link gives the ExitSignal, the monitor the Down, in that order.
        first = await receive()
        second = await receive()
        assert (first.pid, first.reason) == (pid, "bye")
        assert second == Down(ref, pid, "bye")

    await node.run(body)


async def test_self_pid_outside_a_process_raises() -> None:
    with pytest.raises(NotInProcessError):
        self_pid()
    async with open_node():
        with pytest.raises(NotInProcessError):
            self_pid()


async def test_killed_before_it_runs_the_process_never_starts(node: Node) -> None:
    async def body() -> None:
        ran: list[int] = []

        async def child() -> None:
            ran.append(1)

        pid, ref = spawn_monitor(child)
        send_exit(pid, "kill")
        assert await receive() == Down(ref, pid, "killed")
        assert ran == []

    await node.run(body)


async def test_a_crash_does_not_disturb_other_processes(node: Node) -> None:
    async def body() -> None:
        async def crash() -> None:
            raise RuntimeError("boom")

        survivor = spawn(idle)
        _pid, ref = spawn_monitor(crash)
        down = await receive()
        assert down.ref == ref
        assert process_info(survivor) is not None
        assert survivor in processes()

    await node.run(body)


async def test_P30_pid_of_another_incarnation_never_reaches_a_process(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        ghost = Pid(pid.node, pid.id, pid.creation ^ 0xFFFF)
        send(ghost, "hello")  # silently dropped
        await trio.testing.wait_all_tasks_blocked()
        info = process_info(pid)
        assert info is not None
        assert info.message_queue_len == 0
        assert process_info(ghost) is None
        with pytest.raises(NoProcError):
            link(ghost)
        ref = monitor(ghost)
        assert await receive() == Down(ref, ghost, "noproc")

    await node.run(body)


async def test_pids_are_ordered_hashable_values(node: Node) -> None:
    async def body() -> None:
        a = spawn(idle)
        b = spawn(idle)
        assert a < b
        assert sorted([b, a]) == [a, b]
        assert {a: 1}[Pid(a.node, a.id, a.creation)] == 1
        assert a.node == LOCAL_NODE_NAME

    await node.run(body)


# -- introspection ------------------------------------------------------------------


async def test_processes_lists_the_live_processes(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        me = self_pid()
        pid = spawn(idle)
        done, _ref = spawn_monitor(quick)
        assert set(processes()) == {me, pid, done}
        await receive(lambda m: isinstance(m, Down))
        assert set(processes()) == {me, pid}

    await node.run(body)


async def test_process_info_fields(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        trap_exits()
        register("main")

        async def waiter() -> None:
            await receive(lambda m: m == "go")

        pid = spawn_link(waiter)
        ref = monitor(pid)
        send(pid, "not yet")
        send(pid, "still not")
        await trio.testing.wait_all_tasks_blocked()
        info = process_info(pid)
        assert info is not None
        assert info.memory > 0
        assert info == ProcessInfo(
            memory=info.memory,
            reductions=1,  # one receive, waiting
            pid=pid,
            name=None,
            status="waiting",
            message_queue_len=2,
            links=(me,),
            monitors=(),
            monitored_by=(me,),
            trap_exits=False,
            function=waiter.__qualname__,
        )
        mine = process_info(me)
        assert mine is not None
        assert mine.name == "main"
        assert mine.status == "running"
        assert mine.monitors == (ref,)
        assert mine.trap_exits is True
        assert mine.function == body.__qualname__

    await node.run(body)


async def test_reductions_count_every_receive(node: Node) -> None:
    """The work counter counts each receive, across budget renewals and waits."""

    async def body() -> None:
        async def worker() -> None:
            while await receive() != "stop":
                pass

        pid = spawn(worker)
        await trio.testing.wait_all_tasks_blocked()
        assert process_info(pid).reductions == 1  # type: ignore[union-attr]
        for i in range(200):  # a backlog: three budgets and more, without waiting
            send(pid, i)
        await trio.testing.wait_all_tasks_blocked()
        assert process_info(pid).reductions == 201  # type: ignore[union-attr]
        for i in range(10):  # one at a time: a wait each
            send(pid, i)
            await trio.testing.wait_all_tasks_blocked()
        assert process_info(pid).reductions == 211  # type: ignore[union-attr]
        with pytest.raises(ReceiveTimeoutError):
            await receive(timeout=0)
        assert process_info(self_pid()).reductions == 1  # type: ignore[union-attr]

    await node.run(body)


async def test_memory_estimate_grows_with_the_mailbox(node: Node) -> None:
    async def body() -> None:
        async def deaf() -> None:
            await receive(lambda m: m == "never")

        pid = spawn(deaf)
        await trio.testing.wait_all_tasks_blocked()
        empty = process_info(pid).memory  # type: ignore[union-attr]
        for _ in range(1000):
            send(pid, "x" * 1000)
        full = process_info(pid).memory  # type: ignore[union-attr]
        assert full - empty >= 1000 * 1000

    await node.run(body)


async def test_process_info_status_exiting_and_gone(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        await trio.testing.wait_all_tasks_blocked()
        send_exit(pid, "bye")
        info = process_info(pid)
        assert info is not None
        assert info.status == "exiting"
        await trio.testing.wait_all_tasks_blocked()
        assert process_info(pid) is None

    await node.run(body)


# -- running nodes ------------------------------------------------------------------


def test_run_returns_the_result_of_main() -> None:
    async def main(a: int, b: int) -> int:
        return a * b

    assert run(main, 6, 7) == 42


def test_run_raises_the_exception_of_main() -> None:
    async def main() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        run(main)


def test_run_raises_exit_when_main_is_killed() -> None:
    async def main() -> None:
        send_exit(self_pid(), "kill")
        await trio.sleep_forever()

    with pytest.raises(Exit) as info:
        run(main)
    assert info.value.reason == "killed"


def test_run_kills_the_other_processes_when_main_returns() -> None:
    finished: list[str] = []

    async def main() -> Pid:
        async def forever() -> None:
            try:
                await receive()
            finally:
                finished.append("forever")

        pid = spawn(forever)
        await trio.testing.wait_all_tasks_blocked()  # it is running
        return pid

    assert isinstance(run(main), Pid)
    assert finished == ["forever"]


async def test_node_spawn_from_outside_any_process() -> None:
    async with open_node() as node:
        got: list[object] = []

        async def child(x: int) -> None:
            got.append(x)

        pid = node.spawn(child, 7)
        assert isinstance(pid, Pid)
        await trio.testing.wait_all_tasks_blocked()
        assert got == [7]
        assert node.processes() == []


async def test_node_run_returns_raises_and_exits(node: Node) -> None:
    async def ok() -> str:
        return "ok"

    async def bad() -> None:
        raise ValueError("bad")

    async def killed() -> None:
        raise Exit("gone")

    assert await node.run(ok) == "ok"
    with pytest.raises(ValueError, match="bad"):
        await node.run(bad)
    with pytest.raises(Exit) as info:
        await node.run(killed)
    assert info.value.reason == "gone"


async def test_node_run_cancelled_kills_the_process_with_shutdown(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    downs: list[Down] = []
    box: list[Pid] = []

    async def watcher(target: Pid) -> None:
        monitor(target)
        downs.append(await receive())

    async def slow() -> None:
        box.append(self_pid())
        node.spawn(watcher, self_pid())
        await trio.sleep_forever()

    with trio.move_on_after(1):
        await node.run(slow)
    await trio.testing.wait_all_tasks_blocked()
    assert [(d.pid, d.reason) for d in downs] == [(box[0], "shutdown")]
    assert node.process_info(box[0]) is None


async def test_open_node_kills_its_processes_on_exit() -> None:
    ended: list[str] = []

    async def forever() -> None:
        try:
            await receive()
        finally:
            ended.append("ended")

    async with open_node() as node:
        node.spawn(forever)
        await trio.testing.wait_all_tasks_blocked()
        assert ended == []
    assert ended == ["ended"]


async def test_several_nodes_in_one_trio_run_share_nothing() -> None:
    async with open_node() as a, open_node() as b:
        assert a.creation != b.creation
        pids: dict[str, Pid] = {}
        got: list[object] = []

        async def named(label: str) -> None:
            register("same-name")
            pids[label] = self_pid()
            while True:
                got.append((label, await receive()))

        async def in_a() -> None:
            spawn(named, "a")
            await trio.testing.wait_all_tasks_blocked()
            # Same node name, same process number space, different incarnation:
            # a pid of node b never reaches a process of node a.
            send(pids["b"], "from a")
            send("same-name", "a to its own")

        async def in_b() -> None:
            spawn(named, "b")

        await b.run(in_b)
        await a.run(in_a)
        await trio.testing.wait_all_tasks_blocked()
        assert got == [("a", "a to its own")]
        assert a.whereis("same-name") == pids["a"]
        assert b.whereis("same-name") == pids["b"]
        assert pids["a"] != pids["b"]
        assert set(a.processes()).isdisjoint(b.processes())
        assert a.process_info(pids["b"]) is None


async def test_the_current_node_comes_from_context() -> None:
    async with open_node() as outer:

        async def where() -> int:
            return len(processes())

        outer.spawn(idle)
        async with open_node() as inner:
            # Code outside processes sees the innermost node ...
            assert processes() == []
            # ... and each process sees its own.
            assert await outer.run(where) == 2
            assert await inner.run(where) == 1
