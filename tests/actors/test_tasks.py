"""Tasks: async_task, join, poll, shutdown, async_stream."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from beamlet.actors import (
    Down,
    ExitSignal,
    Node,
    Pid,
    ReceiveTimeoutError,
    Task,
    TaskExitError,
    TaskTimeoutError,
    async_stream,
    async_task,
    process_info,
    receive,
    self_pid,
    send,
    spawn_monitor,
    trap_exits,
)


async def nothing_left() -> bool:
    try:
        await receive(timeout=0)
    except ReceiveTimeoutError:
        return True
    return False


async def double(x: int) -> int:
    return 2 * x


async def sleep_then(seconds: float, value: Any) -> Any:
    await trio.sleep(seconds)
    return value


async def test_async_task_join_returns_the_result(node: Node) -> None:
    async def body() -> None:
        task = async_task(double, 21)
        assert isinstance(task, Task)
        assert isinstance(task.pid, Pid)
        info = process_info(task.pid)
        assert info is not None
        assert info.links == (self_pid(),)  # linked ...
        assert info.monitored_by == (self_pid(),)  # ... and monitored by the caller
        assert await task.join() == 42
        assert await nothing_left()
        mine = process_info(self_pid())
        assert mine is not None
        assert mine.monitors == ()

    await node.run(body)


async def test_join_timeout_at_the_exact_time_and_the_task_keeps_running(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        start = trio.current_time()
        task = async_task(sleep_then, 10, "late")
        with pytest.raises(TaskTimeoutError) as info:
            await task.join(timeout=3)
        assert isinstance(info.value, trio.TooSlowError)
        assert trio.current_time() == start + 3
        assert await task.join(timeout=None) == "late"
        assert trio.current_time() == start + 10

    await node.run(body)


async def test_join_default_timeout_is_5_seconds(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        start = trio.current_time()
        task = async_task(sleep_then, 60, None)
        with pytest.raises(TaskTimeoutError):
            await task.join()
        assert trio.current_time() == start + 5
        task.shutdown()

    await node.run(body)


async def test_poll(node: Node, autojump_clock: trio.testing.MockClock) -> None:
    async def body() -> None:
        start = trio.current_time()
        task = async_task(sleep_then, 2, "done")
        assert await task.poll() is None
        assert trio.current_time() == start
        assert await task.poll(1) is None
        assert trio.current_time() == start + 1
        assert await task.poll(5) == "done"
        assert trio.current_time() == start + 2
        with pytest.raises(RuntimeError, match="already"):
            await task.poll()

    await node.run(body)


async def test_shutdown_kills_the_task_and_the_owner_lives(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        task = async_task(sleep_then, 10, "never")
        await trio.testing.wait_all_tasks_blocked()
        assert task.shutdown() is None
        await trio.sleep(20)
        assert process_info(task.pid) is None
        assert await nothing_left()

        finished = async_task(double, 1)
        await trio.sleep(1)
        assert finished.shutdown() == 2  # the result had arrived already
        assert await nothing_left()

    await node.run(body)


async def test_a_crashing_task_kills_a_non_trapping_owner(node: Node) -> None:
    async def body() -> None:
        async def crash() -> None:
            raise ValueError("task failed")

        async def owner() -> None:
            task = async_task(crash)
            await task.join()

        pid, ref = spawn_monitor(owner)
        down = await receive()
        assert (down.ref, down.pid) == (ref, pid)
        assert isinstance(down.reason, ValueError)

    await node.run(body)


async def test_a_trapping_owner_gets_task_exit_error(node: Node) -> None:
    async def body() -> None:
        trap_exits()
        error = ValueError("task failed")

        async def crash() -> None:
            raise error

        task = async_task(crash)
        with pytest.raises(TaskExitError) as info:
            await task.join()
        assert info.value.reason is error
        # The link's exit signal is a message, as for any trapping process.
        assert await receive(timeout=0) == ExitSignal(task.pid, error)

    await node.run(body)


async def test_only_the_owner_may_join(node: Node) -> None:
    async def body() -> None:
        task = async_task(double, 1)
        me = self_pid()

        async def thief() -> None:
            try:
                await task.join()
            except RuntimeError as exc:
                send(me, str(exc))

        spawn_monitor(thief)
        assert "belongs to" in await receive(lambda m: isinstance(m, str))
        assert await task.join() == 2
        with pytest.raises(RuntimeError, match="already"):
            await task.join()
        await receive(lambda m: isinstance(m, Down))

    await node.run(body)


# -- async_stream ---------------------------------------------------------------------------


async def test_async_stream_ordered(node: Node, autojump_clock: trio.testing.MockClock) -> None:
    async def body() -> list[Any]:
        async def slow_for_small(x: int) -> int:
            await trio.sleep(10 - x)
            return x * x

        stream = async_stream(slow_for_small, range(5), max_concurrency=5, timeout=None)
        return [r async for r in stream]

    assert await node.run(body) == [0, 1, 4, 9, 16]


async def test_async_stream_unordered_yields_as_tasks_finish(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> list[Any]:
        start = trio.current_time()

        async def slow_for_small(x: int) -> tuple[int, float]:
            await trio.sleep(10 - x)
            return x, trio.current_time() - start

        stream = async_stream(
            slow_for_small, range(5), max_concurrency=5, ordered=False, timeout=20
        )
        return [r async for r in stream]

    assert await node.run(body) == [(4, 6), (3, 7), (2, 8), (1, 9), (0, 10)]


async def test_async_stream_respects_max_concurrency(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        running = 0
        peak = 0

        async def work(x: int) -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await trio.sleep(1 + x % 3)
            running -= 1
            return x

        start = trio.current_time()
        results = [r async for r in async_stream(work, range(20), max_concurrency=3)]
        assert results == list(range(20))
        assert peak == 3
        assert trio.current_time() > start
        assert await nothing_left()

    await node.run(body)


async def test_async_stream_consumes_items_lazily(node: Node) -> None:
    async def body() -> None:
        taken: list[int] = []

        def items() -> Any:
            for i in range(100):
                taken.append(i)
                yield i

        stream = async_stream(double, items(), max_concurrency=2)
        assert taken == []
        assert await stream.__anext__() == 0
        assert len(taken) < 10  # a few started; not the whole iterable
        await stream.aclose()

    await node.run(body)


async def test_async_stream_timeout(node: Node, autojump_clock: trio.testing.MockClock) -> None:
    async def body() -> None:
        start = trio.current_time()
        got = []
        with pytest.raises(TaskTimeoutError):
            async for r in async_stream(
                sleep_then_value, [1, 2, 30, 4], max_concurrency=4, timeout=5
            ):
                got.append(r)
        # 1 and 2 arrive at t=1 and t=2, 4 at t=4 (it waits for 30, in
        # order); 30 started at t=0 and runs out of time at t=5.
        assert got == [1, 2]
        assert trio.current_time() == start + 5
        await trio.testing.wait_all_tasks_blocked()
        assert node.processes() == [self_pid()]
        assert await nothing_left()

    await node.run(body)


async def test_async_stream_timeout_is_per_task(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> list[int]:
        # Ten 4-second tasks, two at a time, with 5 s each: 20 s in all, no timeout.
        stream = async_stream(sleep_then_value, [4] * 10, max_concurrency=2, timeout=5)
        start = trio.current_time()
        results = [r async for r in stream]
        assert trio.current_time() == start + 20
        return results

    assert await node.run(body) == [4] * 10


async def sleep_then_value(x: int) -> int:
    await trio.sleep(x)
    return x


async def test_async_stream_a_crash_reaches_a_trapping_owner(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        trap_exits()

        async def maybe_crash(x: int) -> int:
            if x == 2:
                await trio.sleep(1)
                raise KeyError(x)
            return x

        got = []
        with pytest.raises(TaskExitError) as info:
            async for r in async_stream(maybe_crash, range(5), max_concurrency=5):
                got.append(r)
        assert isinstance(info.value.reason, KeyError)
        assert got == [0, 1]

    await node.run(body)


async def test_async_stream_a_crash_kills_a_non_trapping_owner(node: Node) -> None:
    async def body() -> None:
        async def crash(x: int) -> int:
            raise KeyError(x)

        async def owner() -> None:
            async for _ in async_stream(crash, [1]):
                pass

        pid, ref = spawn_monitor(owner)
        down = await receive()
        assert (down.ref, down.pid) == (ref, pid)
        assert isinstance(down.reason, KeyError)

    await node.run(body)


async def test_async_stream_as_a_context_manager_kills_the_rest(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        async with async_stream(sleep_then_value, [1, 50, 60], max_concurrency=3) as stream:
            async for r in stream:
                assert r == 1
                break
        await trio.testing.wait_all_tasks_blocked()
        assert node.processes() == [self_pid()]
        assert await nothing_left()

    await node.run(body)
