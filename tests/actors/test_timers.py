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


async def test_timeouts_of_many_durations_fire_at_their_exact_times_in_order(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    """Waits go to one lane per duration (or to the heap past MAX_LANES); whatever
    the mix, each fires at its deadline, and equal deadlines fire in creation order,
    send_after timers included."""
    from beamlet.actors._timers import MAX_LANES

    async def waiter(parent: Any, index: int, timeout: float) -> None:
        start = trio.current_time()
        with pytest.raises(ReceiveTimeoutError):
            await receive(timeout=timeout)
        send_after(0, parent, (index, trio.current_time() - start))

    async def body() -> None:
        me = self_pid()
        durations = [1 + (i * 7) % (MAX_LANES + 20) / 4 for i in range(3 * MAX_LANES)]
        for i, timeout in enumerate(durations):
            spawn(waiter, me, i, timeout)
        got = dict([await receive() for _ in durations])
        assert got == dict(enumerate(durations))
        assert len(node.timers) == 0

    await node.run(body)


async def test_equal_deadlines_fire_in_creation_order(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    """A wait in a lane and a send_after timer due at the same time fire in the
    order they were made, even when the lane's entry in the heap was made for an
    earlier wait that has ended since."""
    from beamlet.actors._timers import Wait

    fired: list[tuple[str, float, int]] = []

    class Probe(Wait):
        __slots__ = ("label",)

        def __init__(self, label: str) -> None:
            self.label = label
            self.target = True

        def expire(self) -> None:
            queued = node.process_info(me)
            assert queued is not None
            fired.append((self.label, trio.current_time() - start, queued.message_queue_len))

    async def body() -> None:
        first = Probe("ended early")
        node.timers.wait(first, 2.0)  # due at 2
        await trio.sleep(1)
        node.timers.wait(Probe("wait"), 2.0)  # due at 3
        await trio.sleep(0.5)
        first.target = None  # ended: the lane's heap entry is now stale
        send_after(1.5, me, "timer")  # due at 3, made after "wait"
        node.timers.wait(Probe("later wait"), 1.5)  # due at 3, made last
        await trio.sleep(2)

    async def idle() -> None:
        await receive(lambda m: m == "stop")

    start = trio.current_time()
    me = node.spawn(idle)
    await node.run(body)
    assert fired == [("wait", 3.0, 0), ("later wait", 3.0, 1)]


async def test_a_lane_stays_bounded_behind_a_long_wait(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    """One wait of 5 s stays pending while 10,000 others of 5 s end at once: the
    lane is compacted, it does not keep them all until the first one expires."""

    async def long_wait() -> None:
        with pytest.raises(ReceiveTimeoutError):
            await receive(timeout=5.0)

    async def body() -> int:
        spawn(long_wait)
        await trio.lowlevel.checkpoint()
        me = self_pid()
        for i in range(10_000):
            send_after(0, me, i)
            assert await receive(timeout=5.0) == i
        lane = node.timers._lanes[5.0]
        return len(lane.entries)

    assert await node.run(body) <= 2048
    await trio.sleep(6)
    assert len(node.timers) == 0
    assert node.timers._lanes == {}
