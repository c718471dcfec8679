"""Exit signals (otp-semantics P18-P23) and how they map onto Trio cancellation."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Down,
    Exit,
    ExitSignal,
    Node,
    Pid,
    link,
    monitor,
    process_info,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    spawn_link,
    spawn_monitor,
    trap_exits,
)


async def idle() -> None:
    await receive()


# -- P18: dropped -------------------------------------------------------------------


async def test_P18_normal_exit_of_a_linked_process_does_not_kill(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        async def quick() -> None:
            pass

        pid, ref = spawn_monitor(quick, link=True)
        assert await receive() == Down(ref, pid, "normal")
        assert process_info(me) is not None  # still here

    await node.run(body)


async def test_P18_send_exit_normal_is_ignored_by_a_non_trapping_process(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        send_exit(pid, "normal")
        await trio.testing.wait_all_tasks_blocked()
        info = process_info(pid)
        assert info is not None
        assert info.status == "waiting"

    await node.run(body)


# -- P19: receiver terminates ------------------------------------------------------------


@pytest.mark.parametrize("reason", ["boom", "shutdown", ("shutdown", "x"), ("any", 1)])
async def test_P19_a_non_trapping_partner_dies_with_the_same_reason(
    node: Node, reason: Any
) -> None:
    async def body() -> None:
        async def partner(to: Pid) -> None:
            link(to)
            await receive()

        async def leaves() -> None:
            await receive()
            raise Exit(reason)

        leaver = spawn(leaves)
        p = spawn(partner, leaver)
        await trio.testing.wait_all_tasks_blocked()
        ref = monitor(p)
        send(leaver, "go")
        assert await receive() == Down(ref, p, reason)

    await node.run(body)


async def test_P19_kill_is_untrappable_and_reads_killed(node: Node) -> None:
    async def body() -> None:
        async def trapper() -> None:
            trap_exits()
            while True:
                await receive()

        pid = spawn(trapper)
        await trio.testing.wait_all_tasks_blocked()
        ref = monitor(pid)
        send_exit(pid, "kill")
        assert await receive() == Down(ref, pid, "killed")

    await node.run(body)


async def test_P19_exit_self_kill_gives_killed(node: Node) -> None:
    async def body() -> None:
        reached: list[str] = []

        async def suicide() -> None:
            trap_exits()
            send_exit(self_pid(), "kill")
            await trio.lowlevel.checkpoint()
            reached.append("after")

        pid, ref = spawn_monitor(suicide)
        assert await receive() == Down(ref, pid, "killed")
        assert reached == []

    await node.run(body)


async def test_P19_exit_self_normal_kills_caller(node: Node) -> None:
    async def body() -> None:
        reached: list[str] = []

        async def leaves() -> None:
            send_exit(self_pid(), "normal")
            await trio.lowlevel.checkpoint()
            reached.append("after")

        pid, ref = spawn_monitor(leaves)
        assert await receive() == Down(ref, pid, "normal")
        assert reached == []

    await node.run(body)


async def test_P19_exit_self_normal_is_a_message_when_trapping(node: Node) -> None:
    async def body() -> None:
        trap_exits()
        me = self_pid()
        send_exit(me, "normal")
        assert await receive() == ExitSignal(me, "normal")

    await node.run(body)


# -- P20: kill through a link ---------------------------------------------------------


async def test_P20_kill_through_link_is_trappable(node: Node) -> None:
    async def body() -> None:
        trap_exits()

        async def exits_with_kill() -> None:
            await receive()
            raise Exit("kill")

        pid = spawn_link(exits_with_kill)
        send(pid, "go")
        # Not rewritten to "killed", and trapped like any other reason.
        assert await receive() == ExitSignal(pid, "kill")

    await node.run(body)


async def test_P20_kill_through_link_kills_a_non_trapping_partner_with_kill(
    node: Node,
) -> None:
    async def body() -> None:
        async def exits_with_kill() -> None:
            await receive()
            raise Exit("kill")

        async def partner(to: Pid) -> None:
            link(to)
            await receive()

        leaver = spawn(exits_with_kill)
        p = spawn(partner, leaver)
        await trio.testing.wait_all_tasks_blocked()
        ref = monitor(p)
        send(leaver, "go")
        assert await receive() == Down(ref, p, "kill")

    await node.run(body)


async def test_P20_partners_of_a_killed_process_get_a_trappable_killed(node: Node) -> None:
    async def body() -> None:
        trap_exits()
        pid = spawn_link(idle)
        send_exit(pid, "kill")
        assert await receive() == ExitSignal(pid, "killed")

        async def partner(to: Pid) -> None:
            link(to)
            await receive()

        victim = spawn(idle)
        p = spawn(partner, victim)
        await trio.testing.wait_all_tasks_blocked()
        ref = monitor(p)
        send_exit(victim, "kill")
        assert await receive() == Down(ref, p, "killed")

    await node.run(body)


# -- P21/P22: trapping, send_exit ------------------------------------------------------------


async def test_P21_trapping_turns_every_signal_into_a_message(node: Node) -> None:
    async def body() -> None:
        trap_exits()
        me = self_pid()

        async def sender(reason: Any) -> None:
            send_exit(me, reason)

        for reason in ["normal", "shutdown", "boom", ("shutdown", 1)]:
            pid = spawn(sender, reason)
            assert await receive() == ExitSignal(pid, reason)
        crash = RuntimeError("crash")

        async def crasher() -> None:
            raise crash

        pid = spawn_link(crasher)
        sig = await receive()
        assert sig == ExitSignal(pid, crash)
        assert process_info(me) is not None

    await node.run(body)


async def test_P22_send_exit_to_a_dead_pid_is_fine(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        pid, _ref = spawn_monitor(quick)
        await receive()
        assert send_exit(pid, "boom") is None
        assert send_exit(pid, "kill") is None

    await node.run(body)


async def test_P22_send_exit_from_outside_any_process(node: Node) -> None:
    pid = node.spawn(idle)
    await trio.testing.wait_all_tasks_blocked()
    send_exit(pid, "from outside")
    await trio.testing.wait_all_tasks_blocked()
    assert node.process_info(pid) is None


async def test_trap_exits_returns_the_previous_flag(node: Node) -> None:
    async def body() -> None:
        assert trap_exits() is False
        assert trap_exits(True) is True
        assert trap_exits(False) is True
        assert trap_exits(False) is False

    await node.run(body)


# -- exit signals are Trio cancellation ------------------------------------------------------


async def test_exit_signals_cannot_be_swallowed_by_except_exception(node: Node) -> None:
    async def body() -> None:
        swallowed: list[BaseException] = []

        async def stubborn() -> None:
            while True:
                try:
                    await receive()
                except Exception as exc:  # user code that catches "everything"
                    swallowed.append(exc)

        pid = spawn(stubborn)
        await trio.testing.wait_all_tasks_blocked()
        ref = monitor(pid)
        send_exit(pid, "boom")
        assert await receive() == Down(ref, pid, "boom")
        assert swallowed == []

    await node.run(body)


async def test_an_exit_signal_interrupts_any_trio_await(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        cleaned: list[str] = []

        async def sleeper() -> None:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(trio.sleep, 1000)
                    await trio.sleep(1000)
            finally:
                cleaned.append("finally ran")

        pid, ref = spawn_monitor(sleeper)
        start = trio.current_time()
        await trio.sleep(1)
        send_exit(pid, "stop now")
        assert await receive() == Down(ref, pid, "stop now")
        assert trio.current_time() == start + 1
        assert cleaned == ["finally ran"]

    await node.run(body)


async def test_the_exit_reason_wins_over_what_the_process_does_after(node: Node) -> None:
    async def body() -> None:
        async def cleans_up_badly() -> None:
            try:
                await receive()
            finally:
                raise RuntimeError("error while cleaning up")

        pid, ref = spawn_monitor(cleans_up_badly)
        await trio.testing.wait_all_tasks_blocked()
        send_exit(pid, "the real reason")
        assert await receive() == Down(ref, pid, "the real reason")

    await node.run(body)


async def test_the_first_exit_signal_decides(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        await trio.testing.wait_all_tasks_blocked()
        ref = monitor(pid)
        send_exit(pid, "first")
        send_exit(pid, "kill")
        assert await receive() == Down(ref, pid, "first")

    await node.run(body)
