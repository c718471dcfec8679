"""Processes run in reused worker tasks: contexts stay isolated, kills stay local."""

from __future__ import annotations

import contextvars
from typing import Any

import beamlet.actors._node as node_module
import pytest
import trio
import trio.lowlevel
import trio.testing
from beamlet.actors import (
    Down,
    ExitSignal,
    Node,
    monitor,
    open_node,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    spawn_link,
    spawn_monitor,
    trap_exits,
)
from beamlet.actors._node import BURST_TASKS, MAX_IDLE_WORKERS, WORKER_REUSE
from beamlet.actors._process import Process

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


async def test_a_process_sees_its_spawners_context_not_a_previous_process(node: Node) -> None:
    async def setter() -> None:
        request_id.set("leaked")

    async def reader(parent: object) -> None:
        send(parent, request_id.get())  # type: ignore[arg-type]

    async def body() -> list[str]:
        seen = []
        for _ in range(3):
            pid = spawn(setter)
            ref = monitor(pid)
            await receive(lambda m, ref=ref: isinstance(m, Down) and m.ref == ref)
            await trio.testing.wait_all_tasks_blocked()
            request_id.set("from the spawner")
            spawn(reader, self_pid())
            seen.append(await receive())
        return seen

    assert await node.run(body) == ["from the spawner"] * 3


async def test_a_killed_process_does_not_disturb_the_next_one_on_its_worker(node: Node) -> None:
    async def sleeper() -> None:
        await trio.sleep_forever()

    async def worker(parent: object, n: int) -> None:
        await trio.lowlevel.checkpoint()
        send(parent, n)  # type: ignore[arg-type]

    async def body() -> list[int]:
        for _ in range(20):
            pid = spawn(sleeper)
            ref = monitor(pid)
            await trio.lowlevel.checkpoint()
            send_exit(pid, "kill")
            down = await receive(lambda m, ref=ref: isinstance(m, Down) and m.ref == ref)
            assert down.reason == "killed"
        for n in range(20):
            spawn(worker, self_pid(), n)
        return sorted([await receive() for _ in range(20)])

    assert await node.run(body) == list(range(20))


async def test_idle_workers_are_bounded(node: Node) -> None:
    async def nothing() -> None:
        pass

    async def body() -> None:
        for _ in range(MAX_IDLE_WORKERS * 2):
            spawn(nothing)
        await trio.testing.wait_all_tasks_blocked()

    await node.run(body)
    assert 0 < len(node._idle) <= MAX_IDLE_WORKERS


# -- spawn bursts --------------------------------------------------------------------


class StepCounter(trio.abc.Instrument):
    """Counts tasks spawned, and the task steps of each run of the Trio loop."""

    def __init__(self) -> None:
        self.spawned = 0
        self.steps = 0
        self.most_steps = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1

    def before_io_wait(self, timeout: float) -> None:
        self.most_steps = max(self.most_steps, self.steps)
        self.steps = 0


async def test_a_burst_of_short_processes_reuses_a_few_workers(node: Node) -> None:
    """3,000 spawns in a row: each process runs in a copy of its spawner's
    context as it was at its spawn, and a few dozen tasks run them all, a
    bounded number of steps at a time (the loop stays responsive)."""
    n = 3000

    async def report(parent: object) -> None:
        send(parent, request_id.get())  # type: ignore[arg-type]

    async def body() -> list[str]:
        me = self_pid()
        for i in range(n):
            request_id.set(f"request {i}")
            spawn(report, me)
        return [await receive() for _ in range(n)]

    counter = StepCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        seen = await node.run(body)
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert sorted(seen) == sorted(f"request {i}" for i in range(n))
    assert counter.spawned <= 2 * BURST_TASKS
    assert counter.most_steps <= 4 * BURST_TASKS
    assert not node._pending


async def test_a_burst_of_processes_that_wait_all_start(node: Node) -> None:
    """Processes spawned in a burst that block: new workers replace them, until
    every one has started."""
    n = 2000

    async def waiter(parent: object, i: int) -> None:
        send(parent, ("started", i))  # type: ignore[arg-type]
        await receive()

    async def body() -> set[int]:
        me = self_pid()
        pids = [spawn(waiter, me, i) for i in range(n)]
        started = {(await receive())[1] for _ in range(n)}
        refs = {monitor(pid) for pid in pids}
        for pid in pids:
            send(pid, "stop")
        while refs:
            down = await receive(lambda m: isinstance(m, Down))
            assert down.reason == "normal"
            refs.remove(down.ref)
        return started

    assert await node.run(body) == set(range(n))
    assert not node._pending
    assert len(node._running_queued) <= 1


async def test_a_mixed_burst_with_kills_and_links(node: Node) -> None:
    """In a burst: some processes block, some end at once, some are killed
    before they ever run (their code never starts), all linked to a trapping
    parent, which gets every exit signal."""
    n = 1200
    ran: set[int] = set()

    async def child(i: int) -> None:
        ran.add(i)
        if i % 3 == 0:
            await receive()

    async def body() -> dict[str, int]:
        trap_exits(True)
        pids = [spawn_link(child, i) for i in range(n)]
        for i in range(1, n, 3):
            send_exit(pids[i], "kill")  # most of them have not run yet
        for i in range(0, n, 3):
            while i not in ran:
                await trio.lowlevel.checkpoint()
            send(pids[i], "go")
        reasons: dict[str, int] = {}
        for _ in range(n):
            signal = await receive(lambda m: isinstance(m, ExitSignal))
            reasons[signal.reason] = reasons.get(signal.reason, 0) + 1
        return reasons

    assert await node.run(body) == {"normal": 2 * n // 3, "killed": n // 3}
    assert not any(i % 3 == 1 for i in ran)  # killed before they ever ran


async def test_processes_still_queued_when_the_node_closes_end_with_shutdown() -> None:
    ended: dict[str, int] = {}
    ran = [0]

    async def child() -> None:
        ran[0] += 1

    def hook(proc: Process, reason: Any, result: Any) -> None:
        ended[reason] = ended.get(reason, 0) + 1

    async with open_node() as node:
        for _ in range(1000):
            node.spawn_process(child, (), hook=hook)
        assert node._pending
    assert not node._pending
    assert sum(ended.values()) == 1000
    assert ended.get("shutdown", 0) == 1000 - ran[0]
    assert node.processes() == []


# -- the feature guard ----------------------------------------------------------------


def test_worker_reuse_is_in_use_with_this_trio() -> None:
    """The Trio the package is tested against lets a parked worker take up a new
    process (assigning ``task.context``); if a release changes that, this fails
    (spawning stays correct, with a task per process)."""
    assert WORKER_REUSE is True


async def test_a_finished_processs_task_runs_the_next_process(node: Node) -> None:
    async def which_task(parent: object) -> None:
        send(parent, trio.lowlevel.current_task())  # type: ignore[arg-type]

    async def body() -> list[trio.lowlevel.Task]:
        tasks = []
        for _ in range(3):
            _pid, ref = spawn_monitor(which_task, self_pid())
            tasks.append(await receive(lambda m: isinstance(m, trio.lowlevel.Task)))
            await receive(lambda m, ref=ref: isinstance(m, Down) and m.ref == ref)
            await trio.testing.wait_all_tasks_blocked()
        return tasks

    first, *rest = await node.run(body)
    assert all(task is first for task in rest)


async def test_without_worker_reuse_each_process_has_a_task_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fallback when the Trio in use does not allow the reuse: plain
    ``start_soon`` per process, with the same behaviour (contexts, kills, bursts)."""
    monkeypatch.setattr(node_module, "WORKER_REUSE", False)
    async with open_node() as node:
        assert node._reuse is False

        async def which_task(parent: object) -> None:
            task = trio.lowlevel.current_task()
            send(parent, (task, request_id.get()))  # type: ignore[arg-type]

        async def sleeper() -> None:
            await trio.sleep_forever()

        async def body() -> None:
            me = self_pid()
            seen = []
            for i in range(3):
                request_id.set(f"r{i}")
                _pid, ref = spawn_monitor(which_task, me)
                seen.append(await receive(lambda m: isinstance(m, tuple)))
                await receive(lambda m, ref=ref: isinstance(m, Down) and m.ref == ref)
                await trio.testing.wait_all_tasks_blocked()
            assert [value for _, value in seen] == ["r0", "r1", "r2"]
            assert len({id(task) for task, _ in seen}) == 3  # all alive: distinct ids
            for _ in range(5):
                pid, ref = spawn_monitor(sleeper)
                await trio.lowlevel.checkpoint()
                send_exit(pid, "kill")
                down = await receive(lambda m, ref=ref: isinstance(m, Down) and m.ref == ref)
                assert down.reason == "killed"
            for i in range(500):
                request_id.set(f"burst {i}")
                spawn(which_task, me)
            assert not node._pending
            got = sorted(value for _, value in [await receive() for _ in range(500)])
            assert got == sorted(f"burst {i}" for i in range(500))

        await node.run(body)
        assert node._idle == []
