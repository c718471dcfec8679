"""Mailboxes, send and selective receive (otp-semantics P1-P9)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from beamlet.actors import (
    Down,
    ExitSignal,
    Node,
    NoSuchNameError,
    Pid,
    ReceiveTimeoutError,
    monitor,
    process_info,
    receive,
    self_pid,
    send,
    send_after,
    send_exit,
    spawn,
    spawn_monitor,
    trap_exits,
)


async def drain() -> list[Any]:
    """Take every message left in the mailbox, in order."""
    out = []
    while True:
        try:
            out.append(await receive(timeout=0))
        except ReceiveTimeoutError:
            return out


def queue_len(pid: Pid) -> int:
    info = process_info(pid)
    assert info is not None
    return info.message_queue_len


# -- P1-P5: sending ------------------------------------------------------------------


async def test_P1_send_never_blocks_the_sender(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        async def never_receives() -> None:
            await trio.sleep_forever()

        pid = spawn(never_receives)
        assert not inspect.iscoroutinefunction(send)
        start = trio.current_time()
        for i in range(10_000):
            assert send(pid, i) is None
        assert trio.current_time() == start
        assert queue_len(pid) == 10_000

    await node.run(body)


async def test_P2_messages_from_one_sender_arrive_in_order(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        async def sender(tag: str) -> None:
            for i in range(100):
                send(me, (tag, i))
                if i % 7 == 0:
                    await trio.lowlevel.checkpoint()

        for tag in "abc":
            spawn(sender, tag)
        got = [await receive() for _ in range(300)]
        for tag in "abc":
            assert [i for t, i in got if t == tag] == list(range(100))

    await node.run(body)


async def test_P2_message_before_down(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        async def last_words() -> None:
            send(me, "bye")
            raise RuntimeError("crash right after sending")

        for _ in range(50):
            pid, ref = spawn_monitor(last_words)
            assert await receive() == "bye"
            down = await receive()
            assert (down.ref, down.pid) == (ref, pid)

    await node.run(body)


async def test_P2_message_before_exit_signal(node: Node) -> None:
    async def body() -> None:
        trap_exits()
        me = self_pid()

        async def last_words() -> None:
            send(me, "bye")
            send_exit(me, "and goodbye")

        pid = spawn(last_words)
        assert await receive() == "bye"
        assert await receive() == ExitSignal(pid, "and goodbye")

    await node.run(body)


async def test_P3_send_to_a_dead_pid_is_silent(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        pid, _ref = spawn_monitor(quick)
        await receive()
        assert send(pid, "anyone?") is None

    await node.run(body)


async def test_P4_mailbox_order_is_arrival_order_for_every_kind(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        me = self_pid()
        trap_exits()

        async def quick() -> None:
            pass

        send(me, 1)
        send_after(1, me, "timer")
        send(me, 2)
        pid, ref = spawn_monitor(quick)
        await trio.testing.wait_all_tasks_blocked()  # Down queued
        send(me, 3)
        send_exit(me, "trapped")
        await trio.sleep(2)  # the timer fires
        send(me, 4)
        assert await drain() == [
            1,
            2,
            Down(ref, pid, "normal"),
            3,
            ExitSignal(me, "trapped"),
            "timer",
            4,
        ]

    await node.run(body)


async def test_P5_send_operands(node: Node) -> None:
    async def body() -> None:
        spawn(trio.sleep_forever, name="known")
        send("known", "fine")
        with pytest.raises(NoSuchNameError, match="nobody"):
            send("nobody", "lost")
        # A (name, node) pair never raises: not for a local name that is not
        # registered, nor for a node that cannot be reached.
        assert send(("nobody", self_pid().node), "dropped") is None
        assert send(("nobody", "elsewhere@host"), "dropped") is None
        assert send(("known", self_pid().node), "delivered") is None

    await node.run(body)


# -- P6-P9: receiving ------------------------------------------------------------------


async def test_P6_selective_receive_leaves_the_others_in_order(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        for msg in ["a1", "b1", "a2", "c1", "b2"]:
            send(me, msg)
        assert await receive(lambda m: m.startswith("b")) == "b1"
        assert await receive(lambda m: m.startswith("c")) == "c1"
        assert await receive(lambda m: m.startswith("b")) == "b2"
        assert await drain() == ["a1", "a2"]

    await node.run(body)


async def test_P6_receive_without_match_takes_the_oldest(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        send(me, "first")
        send(me, "second")
        assert await receive() == "first"
        assert await receive() == "second"

    await node.run(body)


async def test_P7_a_waiting_receive_tests_only_new_messages(node: Node) -> None:
    async def body() -> None:
        seen: list[Any] = []

        def only_go(msg: Any) -> bool:
            seen.append(msg)
            return msg == "go"

        async def waiter() -> None:
            await receive(only_go)
            await receive(lambda m: False)  # stay alive

        pid = spawn(waiter)
        send(pid, "old1")
        send(pid, "old2")
        await trio.testing.wait_all_tasks_blocked()
        assert seen == ["old1", "old2"]  # one scan on entry
        send(pid, "new1")
        send(pid, "new2")
        assert seen == ["old1", "old2", "new1", "new2"]  # each new one tested once
        send(pid, "go")
        await trio.testing.wait_all_tasks_blocked()
        assert seen == ["old1", "old2", "new1", "new2", "go"]
        assert queue_len(pid) == 4

    await node.run(body)


async def test_a_waiting_receiver_is_woken_only_by_a_message_that_matches(node: Node) -> None:
    async def body() -> None:
        wakeups: list[str] = []

        async def waiter() -> None:
            while True:
                wakeups.append(await receive(lambda m: m == "go"))

        pid = spawn(waiter)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(100):
            send(pid, i)
        await trio.testing.wait_all_tasks_blocked()
        info = process_info(pid)
        assert info is not None
        assert info.status == "waiting"
        assert wakeups == []
        send(pid, "go")
        await trio.testing.wait_all_tasks_blocked()
        assert wakeups == ["go"]
        assert queue_len(pid) == 100

    await node.run(body)


async def test_P7_a_later_receive_scans_from_the_oldest_again(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        send(me, "x")
        with pytest.raises(ReceiveTimeoutError):
            await receive(lambda m: m == "y", timeout=0)
        assert await receive(lambda m: m == "x", timeout=0) == "x"

    await node.run(body)


async def test_P8_timeout_zero_only_checks_the_mailbox(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        me = self_pid()
        start = trio.current_time()
        with pytest.raises(ReceiveTimeoutError):
            await receive(timeout=0)
        send(me, "here")
        assert await receive(timeout=0) == "here"
        assert trio.current_time() == start

    await node.run(body)


async def test_P8_receive_times_out_at_the_exact_time(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        start = trio.current_time()
        with pytest.raises(ReceiveTimeoutError) as info:
            await receive(lambda m: m == "never", timeout=2.5)
        assert isinstance(info.value, trio.TooSlowError)
        assert trio.current_time() == start + 2.5

    await node.run(body)


async def test_P8_timeout_counts_from_entering_receive(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        me = self_pid()
        start = trio.current_time()
        send_after(1, me, "noise")  # does not match: does not restart the clock
        send_after(2.5, me, "late")
        with pytest.raises(ReceiveTimeoutError):
            await receive(lambda m: m == "late", timeout=2)
        assert trio.current_time() == start + 2
        assert await receive(lambda m: m == "late", timeout=1) == "late"
        assert trio.current_time() == start + 2.5

    await node.run(body)


async def test_P8_no_timeout_waits_forever(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        async def waiter() -> None:
            await receive()

        pid = spawn(waiter)
        await trio.sleep(10**9)
        info = process_info(pid)
        assert info is not None
        assert info.status == "waiting"

    await node.run(body)


async def test_P9_messages_stay_until_received(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        for i in range(5):
            send(me, i)
        await trio.lowlevel.checkpoint()
        assert queue_len(me) == 5
        assert await receive() == 0
        assert queue_len(me) == 4

    await node.run(body)


async def test_a_message_is_never_lost_to_a_cancelled_receive(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        me = self_pid()
        send_after(5, me, "late")
        start = trio.current_time()
        with trio.move_on_after(1):
            await receive()
        assert trio.current_time() == start + 1
        assert await receive() == "late"
        assert trio.current_time() == start + 5

    await node.run(body)


async def test_a_match_that_raises_raises_in_the_receiver(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        def broken(msg: Any) -> bool:
            raise ValueError(f"cannot judge {msg!r}")

        # A message already queued ...
        send(me, "queued")
        with pytest.raises(ValueError, match="queued"):
            await receive(broken)
        assert await receive() == "queued"

        # ... and one arriving while the receiver waits.
        outcome: list[Any] = []

        async def waiter() -> None:
            try:
                await receive(broken)
            except ValueError as exc:
                outcome.append(str(exc))
            outcome.append(await receive(timeout=0))

        pid = spawn(waiter)
        await trio.testing.wait_all_tasks_blocked()
        send(pid, "arriving")
        await trio.testing.wait_all_tasks_blocked()
        assert outcome == ["cannot judge 'arriving'", "arriving"]

    await node.run(body)


async def test_busy_receivers_cannot_starve_others(node: Node) -> None:
    async def body() -> None:
        counts = {"a": 0, "b": 0}

        async def busy(tag: str) -> None:
            me = self_pid()
            send(me, 0)
            while True:
                n = await receive()
                counts[tag] += 1
                send(me, n + 1)  # there is always mail

        spawn(busy, "a")
        spawn(busy, "b")
        for _ in range(20):
            await trio.lowlevel.checkpoint()  # the caller gets to run too
        assert counts["a"] > 0
        assert counts["b"] > 0
        before = dict(counts)
        for _ in range(20):
            await trio.lowlevel.checkpoint()
        assert counts["a"] > before["a"]
        assert counts["b"] > before["b"]

    await node.run(body)


async def test_receive_works_under_trio_cancel_scopes(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        start = trio.current_time()
        with trio.fail_after(3), pytest.raises(ReceiveTimeoutError):
            await receive(timeout=1)
        assert trio.current_time() == start + 1
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(1):
                await receive(timeout=3)
        assert trio.current_time() == start + 2

    await node.run(body)


async def test_call_style_reply_matching_on_a_fresh_ref(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        async def server() -> None:
            while True:
                ref, who = await receive()
                send(who, (ref, "pong"))

        pid = spawn(server)
        for i in range(1000):
            send(me, ("noise", i))
        ref = monitor(pid)
        send(pid, (ref, me))
        assert await receive(lambda m: type(m) is tuple and m[0] == ref) == (ref, "pong")
        assert await drain() == [("noise", i) for i in range(1000)]

    await node.run(body)


async def test_receive_in_a_cancelled_scope_raises_cancelled_with_mail_waiting(
    node: Node,
) -> None:
    """``receive`` is a checkpoint even when a message is there to take, and the
    cancellation takes nothing from the mailbox."""

    async def body() -> None:
        me = self_pid()
        for i in range(3):
            send(me, i)
        for expected in range(3):
            with trio.CancelScope() as scope:
                scope.cancel()
                await receive()
                raise AssertionError("receive() in a cancelled scope returned")
            assert scope.cancelled_caught
            assert await receive() == expected

    await node.run(body)


def test_receive_uses_the_inline_cancel_check_with_this_trio() -> None:
    """The Trio the package is tested against keeps the flag ``receive`` reads
    inline; if a release moves it, this fails (``receive`` stays correct, slower)."""
    from beamlet.actors._process import FAST_CANCEL_CHECK

    assert FAST_CANCEL_CHECK is True
