"""Timers: send_after / cancel_timer, on virtual time."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Node,
    ReceiveTimeoutError,
    cancel_timer,
    process_info,
    receive,
    register,
    self_pid,
    send_after,
    send_exit,
    spawn,
    spawn_monitor,
)


async def test_send_after_delivers_at_the_exact_time(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        start = trio.current_time()
        send_after(1.5, self_pid(), "tick")
        assert await receive() == "tick"
        assert trio.current_time() == start + 1.5

    await node.run(body)


async def test_timers_fire_in_deadline_order_and_fifo_on_ties(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        me = self_pid()
        start = trio.current_time()
        send_after(3, me, "c")
        send_after(1, me, "a1")
        send_after(1, me, "a2")
        send_after(2, me, "b")
        send_after(0, me, "now")
        got = []
        for _ in range(5):
            msg = await receive()
            got.append((msg, trio.current_time() - start))
        assert got == [("now", 0), ("a1", 1), ("a2", 1), ("b", 2), ("c", 3)]

    await node.run(body)


async def test_cancel_timer_returns_the_exact_time_left(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        ref = send_after(10, self_pid(), "never")
        await trio.sleep(2.5)
        assert cancel_timer(ref) == 7.5
        assert cancel_timer(ref) is None  # already cancelled
        await trio.sleep(10)
        with pytest.raises(ReceiveTimeoutError):
            await receive(timeout=0)

    await node.run(body)


async def test_cancel_timer_after_it_fired_returns_none(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        ref = send_after(1, self_pid(), "fired")
        assert await receive() == "fired"
        assert cancel_timer(ref) is None

    await node.run(body)


async def test_a_timer_to_a_dead_pid_is_void(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        async def short() -> None:
            await receive()

        pid, _ref = spawn_monitor(short)
        ref = send_after(5, pid, "too late")
        send_exit(pid, "bye")
        await receive()
        assert cancel_timer(ref) is None
        other = send_after(5, pid, "too late too")
        await trio.sleep(10)  # fires into the void without harm
        assert cancel_timer(other) is None

    await node.run(body)


async def test_a_name_is_resolved_when_the_timer_fires(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        got: list[Any] = []
        send_after(1, "late-comer", "hello")
        send_after(1, "never-registered", "dropped")  # dropped, no error

        async def late_comer() -> None:
            register("late-comer")
            got.append((await receive(), trio.current_time()))

        start = trio.current_time()
        spawn(late_comer)
        await trio.sleep(2)
        assert got == [("hello", start + 1)]

    await node.run(body)


async def test_send_after_from_outside_a_process(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    got: list[Any] = []

    async def waiter() -> None:
        got.append(await receive())

    pid = node.spawn(waiter)
    start = trio.current_time()
    ref = send_after(3, pid, "from outside")
    await trio.sleep(1)
    assert cancel_timer(ref) == 2
    send_after(3, pid, "second")
    await trio.sleep(5)
    assert got == ["second"]
    assert trio.current_time() == start + 6
    assert node.process_info(pid) is None


async def test_many_cancelled_timers_leave_nothing_behind(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        me = self_pid()
        refs = [send_after(100 + i, me, i) for i in range(3000)]
        for ref in refs[:-1]:
            assert cancel_timer(ref) is not None
        assert len(node.timers) == 1
        await trio.sleep(200 + 3000)
        assert await receive(timeout=0) == 2999
        assert len(node.timers) == 0
        info = process_info(me)
        assert info is not None
        assert info.message_queue_len == 0

    await node.run(body)


async def test_receive_timeouts_leave_no_timers_behind(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        me = self_pid()
        for _ in range(100):
            send_after(0.5, me, "x")
            assert await receive(timeout=1) == "x"
        await trio.sleep(5)
        assert len(node.timers) == 0

    await node.run(body)
