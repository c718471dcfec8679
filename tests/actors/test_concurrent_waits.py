"""Several tasks of one process waiting at once: calls, task joins, stop.

Each task gets its own reply or its own error; plain ``receive`` stays a single
waiter, with a clear error for a second one.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    CallExitError,
    CallTimeoutError,
    Exit,
    ExitSignal,
    From,
    GenServer,
    Node,
    NoReply,
    TaskExitError,
    TaskTimeoutError,
    async_stream,
    async_task,
    call,
    process_info,
    receive,
    reply,
    self_pid,
    send,
    send_after,
    stop,
    trap_exits,
)


class Later(GenServer):
    """Replies to ("after", seconds, value) once ``seconds`` have passed; ("never",) never."""

    async def handle_call(self, request: Any, caller: From) -> Any:
        if request[0] == "after":
            _, seconds, value = request
            send_after(seconds, self_pid(), ("reply", caller, value))
            return NoReply
        if request[0] == "never":
            return NoReply
        if request[0] == "crash":
            send_after(request[1], self_pid(), "crash")
            return NoReply
        return request

    async def handle_info(self, msg: Any) -> Any:
        if msg == "crash":
            raise Exit("boom")
        _, caller, value = msg
        reply(caller, value)


def leftovers(pid: Any) -> tuple[int, tuple[Any, ...]]:
    """The queue length and the monitors of a process: both should be empty after its calls."""
    info = process_info(pid)
    assert info is not None
    return info.message_queue_len, info.monitors


async def test_concurrent_calls_each_get_their_own_reply(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> dict[str, Any]:
        server = await Later.start()
        start = trio.current_time()
        got: dict[str, Any] = {}

        async def one(key: str, seconds: float) -> None:
            got[key] = (await call(server, ("after", seconds, key)), trio.current_time() - start)

        async with trio.open_nursery() as nursery:
            # Replies come in the reverse order of the calls.
            for key, seconds in (("a", 3.0), ("b", 2.0), ("c", 1.0)):
                nursery.start_soon(one, key, seconds)
        assert leftovers(self_pid()) == (0, ())
        return got

    assert await node.run(body) == {"a": ("a", 3.0), "b": ("b", 2.0), "c": ("c", 1.0)}


async def test_one_call_times_out_while_the_others_get_their_replies(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> dict[str, Any]:
        server = await Later.start()
        start = trio.current_time()
        got: dict[str, Any] = {}

        async def one(key: str, request: Any, timeout: float) -> None:
            try:
                got[key] = await call(server, request, timeout=timeout)
            except CallTimeoutError as exc:
                got[key] = ("timeout", trio.current_time() - start, str(exc))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "late", ("after", 5.0, "too late"), 2.0)
            nursery.start_soon(one, "never", ("never",), 1.5)
            nursery.start_soon(one, "soon", ("after", 1.0, "soon"), 4.0)
            nursery.start_soon(one, "plain", ("plain",), 4.0)
        # The late reply (at 5 s) is dropped, never queued.
        await trio.sleep(10)
        assert leftovers(self_pid()) == (0, ())
        return got

    got = await node.run(body)
    assert got["soon"] == "soon"
    assert got["plain"] == ("plain",)
    assert got["late"][:2] == ("timeout", 2.0)
    assert got["never"][:2] == ("timeout", 1.5)
    assert "within 1.5 s" in got["never"][2]


async def test_the_servers_death_fails_every_pending_call_with_its_reason(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> dict[str, Any]:
        doomed = await Later.start()
        other = await Later.start()
        got: dict[str, Any] = {}

        async def one(key: str, server: Any, request: Any) -> None:
            try:
                got[key] = await call(server, request, timeout=None)
            except CallExitError as exc:
                got[key] = ("exit", exc.reason, trio.current_time())

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "a", doomed, ("never",))
            nursery.start_soon(one, "b", doomed, ("never",))
            nursery.start_soon(one, "c", doomed, ("crash", 1.0))
            nursery.start_soon(one, "d", other, ("after", 2.0, "fine"))
        assert leftovers(self_pid()) == (0, ())
        return {k: (v if k == "d" else (v[0], v[1], v[2] - start)) for k, v in got.items()}

    got = await node.run(body)
    assert got == {
        "a": ("exit", "boom", 1.0),
        "b": ("exit", "boom", 1.0),
        "c": ("exit", "boom", 1.0),
        "d": "fine",
    }


async def test_cancelling_one_call_does_not_disturb_the_others(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> dict[str, Any]:
        server = await Later.start()
        got: dict[str, Any] = {}

        async def cancelled() -> None:
            with trio.move_on_after(1.0) as scope:
                await call(server, ("after", 2.0, "dropped"), timeout=None)
            got["cancelled"] = scope.cancelled_caught

        async def other(key: str, seconds: float) -> None:
            got[key] = await call(server, ("after", seconds, key))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancelled)
            nursery.start_soon(other, "before", 0.5)
            nursery.start_soon(other, "same time", 2.0)
            nursery.start_soon(other, "after", 3.0)
        await trio.sleep(5)
        assert leftovers(self_pid()) == (0, ())
        return got

    assert await node.run(body) == {
        "cancelled": True,
        "before": "before",
        "same time": "same time",
        "after": "after",
    }


async def test_a_task_of_the_process_in_receive_does_not_take_the_replies(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> list[Any]:
        server = await Later.start()
        me = self_pid()
        seen: list[Any] = []

        async def receiver() -> None:
            seen.append(await receive())
            seen.append(await receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver)
            await trio.sleep(0.1)
            seen.append(await call(server, ("after", 1.0, "reply")))
            send(me, "plain 1")
            seen.append(await call(server, ("after", 1.0, "reply 2")))
            send(me, "plain 2")
        return seen

    assert await node.run(body) == ["reply", "plain 1", "reply 2", "plain 2"]


async def test_plain_receive_stays_a_single_waiter(node: Node) -> None:
    async def body() -> list[Any]:
        got: list[Any] = []

        async def first() -> None:
            got.append(await receive())

        async def second() -> None:
            with pytest.raises(RuntimeError, match=r"another task of <.*> is already waiting"):
                await receive()
            got.append("refused")
            send(self_pid(), "for the first")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(second)
        return got

    assert await node.run(body) == ["refused", "for the first"]


async def test_concurrent_joins_of_tasks(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def sleeper(seconds: float, value: Any) -> Any:
        await trio.sleep(seconds)
        return value

    async def failing() -> None:
        await trio.sleep(1.5)
        raise Exit("task failed")

    async def body() -> dict[str, Any]:
        trap_exits(True)
        start = trio.current_time()
        slow = async_task(sleeper, 3.0, "slow")
        fast = async_task(sleeper, 1.0, "fast")
        bad = async_task(failing)
        done_early = async_task(sleeper, 0.0, "early")
        await trio.sleep(0.5)  # its result is queued before anyone joins
        got: dict[str, Any] = {}

        async def join(key: str, task: Any, timeout: float | None) -> None:
            try:
                got[key] = (await task.join(timeout), trio.current_time() - start)
            except (TaskExitError, TaskTimeoutError) as exc:
                got[key] = (type(exc).__name__, trio.current_time() - start)

        async def poll_twice() -> None:
            got["poll 1"] = await slow.poll(1.0)  # not done by then
            got["poll 2"] = await slow.poll(5.0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(join, "fast", fast, None)
            nursery.start_soon(join, "bad", bad, None)
            nursery.start_soon(join, "early", done_early, 1.0)
            nursery.start_soon(poll_twice)
        # What is left are the four exit signals of the tasks (trapped), nothing else.
        for _ in range(4):
            await receive(lambda m: isinstance(m, ExitSignal), timeout=0)
        assert leftovers(self_pid()) == (0, ())
        return got

    got = await node.run(body)
    assert got == {
        "fast": ("fast", 1.0),
        "bad": ("TaskExitError", 1.5),
        "early": ("early", 0.5),
        "poll 1": None,
        "poll 2": "slow",
    }


async def test_a_task_joined_by_two_tasks_at_once_is_a_clear_error(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def sleeper() -> str:
        await trio.sleep(1)
        return "done"

    async def body() -> list[Any]:
        task = async_task(sleeper)
        results: list[Any] = []

        async def join() -> None:
            try:
                results.append(await task.join())
            except RuntimeError as exc:
                results.append(str(exc))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(join)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(join)
        return results

    first, second = await node.run(body)
    assert "already waiting for" in first
    assert second == "done"


async def test_stop_and_calls_from_several_tasks(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> dict[str, Any]:
        to_stop = await Later.start()
        other = await Later.start()
        got: dict[str, Any] = {}

        async def stopper() -> None:
            await stop(to_stop, "normal")
            got["stopped"] = trio.current_time()

        async def pending_call() -> None:
            try:
                await call(to_stop, ("never",), timeout=None)
            except CallExitError as exc:
                got["pending"] = exc.reason

        async def caller() -> None:
            got["other"] = await call(other, ("after", 1.0, "fine"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pending_call)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(stopper)
            nursery.start_soon(caller)
        with pytest.raises(CallExitError) as info:
            await stop(to_stop)
        got["again"] = info.value.reason
        assert leftovers(self_pid()) == (0, ())
        return got

    got = await node.run(body)
    assert got["pending"] == "normal"
    assert got["other"] == "fine"
    assert got["again"] == "noproc"


async def test_a_stream_and_calls_from_several_tasks(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def double(x: int) -> int:
        await trio.sleep(x / 10)
        return 2 * x

    async def body() -> dict[str, Any]:
        server = await Later.start()
        got: dict[str, Any] = {}

        async def stream() -> None:
            got["stream"] = [r async for r in async_stream(double, range(8), max_concurrency=3)]

        async def calls() -> None:
            got["calls"] = [await call(server, ("after", 0.15, i)) for i in range(4)]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream)
            nursery.start_soon(calls)
        return got

    got = await node.run(body)
    assert got == {"stream": [2 * i for i in range(8)], "calls": [0, 1, 2, 3]}


async def test_many_concurrent_calls_with_random_outcomes(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    """60 tasks of one process call one server; each gets exactly its own outcome."""

    async def body() -> None:
        server = await Later.start()
        outcomes: dict[int, Any] = {}
        expected: dict[int, Any] = {}

        async def one(i: int) -> None:
            kind = i % 4
            try:
                if kind == 0:
                    outcomes[i] = await call(server, ("after", i / 10, i), timeout=10.0)
                elif kind == 1:
                    outcomes[i] = await call(server, ("never",), timeout=i / 10)
                elif kind == 2:
                    with trio.move_on_after(i / 20):
                        outcomes[i] = await call(server, ("after", i / 10, i), timeout=None)
                    outcomes.setdefault(i, "cancelled")
                else:
                    outcomes[i] = await call(server, ("plain", i))
            except CallTimeoutError:
                outcomes[i] = "timeout"

        for i in range(60):
            expected[i] = [i, "timeout", "cancelled", ("plain", i)][i % 4]
        async with trio.open_nursery() as nursery:
            for i in range(60):
                nursery.start_soon(one, i)
        assert outcomes == expected
        await trio.sleep(10)
        assert leftovers(self_pid()) == (0, ())
        server_info = process_info(server)
        assert server_info is not None and server_info.monitored_by == ()

    await node.run(body)
