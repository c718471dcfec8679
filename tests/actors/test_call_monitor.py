"""A local ``call``'s monitor and reply alias are one entry on each side (``CallWait``).

The caller's wait is its side of the monitor; the server's ``monitored_by``
holds the ref. These tests check what that must keep of ``call``'s
guarantees, and that nothing is left in either table after many calls,
timeouts, cancellations and server exits.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from beamlet.actors import (
    CallExitError,
    CallTimeoutError,
    From,
    GenServer,
    Node,
    NoReply,
    Ref,
    call,
    process_info,
    receive,
    reply,
    self_pid,
    send,
    spawn,
)
from beamlet.actors.lowlevel import current_process


class Echo(GenServer):
    async def handle_call(self, request: Any, caller: From) -> Any:
        return request


class Later(GenServer):
    """Keeps the callers; answers them on ("answer", value), or exits on ("crash", reason)."""

    async def init(self) -> None:
        self.callers: list[From] = []

    async def handle_call(self, request: Any, caller: From) -> Any:
        if request == "hold":
            self.callers.append(caller)
            return NoReply
        if request == "reply_then_exit":
            reply(caller, "replied")
            raise RuntimeError("after the reply")
        return request

    async def handle_info(self, msg: Any) -> Any:
        if msg[0] == "answer":
            for caller in self.callers:
                reply(caller, msg[1])
            self.callers.clear()
        return None


def tables_empty(node: Node, *pids: Any) -> bool:
    for pid in pids:
        proc = node.lookup(pid)
        assert proc is not None
        if proc.monitors or proc.monitored_by or proc.waiters:
            return False
    return True


async def test_many_calls_leave_no_entries(node: Node) -> None:
    async def body() -> None:
        server = await Echo.start()
        for i in range(500):
            assert await call(server, i) == i
        assert tables_empty(node, self_pid(), server)

    await node.run(body)


async def test_timeouts_and_late_replies_leave_no_entries(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    async def body() -> None:
        server = await Later.start()
        for _ in range(50):
            with pytest.raises(CallTimeoutError):
                await call(server, "hold", timeout=1.0)
        assert tables_empty(node, self_pid(), server)
        send(server, ("answer", "too late"))  # 50 late replies: all dropped
        assert await call(server, "ping") == "ping"
        assert current_process().message_queue_len == 0
        assert tables_empty(node, self_pid(), server)

    await node.run(body)


async def test_cancelled_calls_leave_no_entries(node: Node) -> None:
    async def body() -> None:
        server = await Later.start()
        with trio.move_on_after(0.01):
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(call, server, "hold")
        assert tables_empty(node, self_pid(), server)
        send(server, ("answer", "nobody"))
        assert await call(server, "ping") == "ping"
        assert current_process().message_queue_len == 0

    await node.run(body)


async def test_the_monitor_shows_while_the_call_waits(node: Node) -> None:
    async def body() -> None:
        server = await Later.start()
        me = self_pid()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, server, "hold")
            await trio.testing.wait_all_tasks_blocked()
            mine = process_info(me)
            theirs = process_info(server)
            assert mine is not None and theirs is not None
            assert len(mine.monitors) == 1 and isinstance(mine.monitors[0], Ref)
            assert theirs.monitored_by == (me,)
            send(server, ("answer", 1))
        assert tables_empty(node, me, server)

    await node.run(body)


async def test_a_server_that_dies_fails_every_waiting_call_at_once(node: Node) -> None:
    async def body() -> None:
        server = await Later.start()
        results: list[Any] = []

        async def one() -> None:
            try:
                await call(server, "hold", timeout=None)
            except CallExitError as exc:
                results.append(exc.reason)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            node.lookup(server).kill("boom")  # type: ignore[union-attr]
        assert results == ["boom", "boom", "boom"]
        assert tables_empty(node, self_pid())

    await node.run(body)


async def test_a_reply_before_the_exit_wins_over_the_down(node: Node) -> None:
    async def body() -> None:
        server = await Later.start()
        assert await call(server, "reply_then_exit") == "replied"
        assert tables_empty(node, self_pid())
        assert current_process().message_queue_len == 0  # no Down left behind

    await node.run(body)


async def test_a_caller_that_is_killed_mid_call_leaves_no_monitor(node: Node) -> None:
    async def body() -> None:
        server = await Later.start()

        async def caller() -> None:
            await call(server, "hold", timeout=None)

        pid = spawn(caller)
        await trio.testing.wait_all_tasks_blocked()
        assert process_info(server).monitored_by == (pid,)  # type: ignore[union-attr]
        node.lookup(pid).kill("killed")  # type: ignore[union-attr]
        await trio.testing.wait_all_tasks_blocked()
        assert node.lookup(pid) is None
        assert tables_empty(node, server)
        send(server, ("answer", "to the dead"))
        assert await call(server, "ping") == "ping"

    await node.run(body)


async def test_a_call_of_a_task_that_outlives_its_process_still_times_out(
    node: Node, autojump_clock: trio.testing.MockClock
) -> None:
    # A task started in a nursery outside the process inherits its context
    # and waits in call() while the process returns: the call's timeout still
    # fires at exactly its time, and the server keeps no entry for it.
    async def body() -> None:
        server = await Later.start()
        outcome: list[Any] = []
        with trio.fail_after(5):
            async with trio.open_nursery() as outer:

                async def proc_fn() -> None:
                    async def waiter() -> None:
                        with pytest.raises(CallTimeoutError):
                            await call(server, "hold", timeout=0.5)
                        outcome.append(trio.current_time() - start)

                    outer.start_soon(waiter)
                    await trio.sleep(0.1)

                start = trio.current_time()
                pid = spawn(proc_fn)
                await trio.sleep(0.2)
                assert node.lookup(pid) is None
                assert tables_empty(node, server)
        assert outcome == [pytest.approx(0.5)]

    await node.run(body)


async def test_calling_self_by_pid_and_by_name(node: Node) -> None:
    async def body() -> None:
        node.register("me", self_pid())
        for target in (self_pid(), "me"):
            with pytest.raises(CallExitError) as info:
                await call(target, "x")
            assert info.value.reason == "calling_self"
        assert tables_empty(node, self_pid())
        send(self_pid(), "still works")
        assert await receive() == "still works"

    await node.run(body)


def test_ref_and_from_are_values_of_their_own() -> None:
    from beamlet.actors import Pid

    ref = Ref("a@h", 1, 2)
    assert ref == Ref("a@h", 1, 2) and hash(ref) == hash(Ref("a@h", 1, 2))
    assert ref != ("a@h", 1, 2)
    assert (ref == ("a@h", 1, 2)) is False
    assert ref != Ref("a@h", 2, 2) and ref != Ref("b@h", 1, 2)
    caller = From(Pid("a@h", 1, 2), ref)
    assert caller == From(Pid("a@h", 1, 2), Ref("a@h", 1, 2))
    assert caller != (Pid("a@h", 1, 2), ref)
    assert (caller.pid, caller.ref) == (Pid("a@h", 1, 2), ref)
    with pytest.raises(TypeError):
        ref < Ref("a@h", 2, 2)  # noqa: B015
    with pytest.raises(AttributeError):
        ref.id = 3  # type: ignore[misc]
    assert repr(ref) == "#Ref<a@h.1>"
