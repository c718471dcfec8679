"""Processes run in reused worker tasks: contexts stay isolated, kills stay local."""

from __future__ import annotations

import contextvars

import trio
import trio.lowlevel
import trio.testing
from beamlet.actors import Down, Node, monitor, receive, self_pid, send, send_exit, spawn
from beamlet.actors._node import MAX_IDLE_WORKERS

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
