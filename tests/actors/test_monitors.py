"""Monitors (otp-semantics P25-P29)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Down,
    Node,
    Pid,
    ReceiveTimeoutError,
    Ref,
    demonitor,
    monitor,
    process_info,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
    spawn_monitor,
)


async def idle() -> None:
    await receive()


async def nothing_left() -> bool:
    try:
        await receive(timeout=0)
    except ReceiveTimeoutError:
        return True
    return False


async def test_P25_monitor_delivers_down_with_the_reason(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        ref = monitor(pid)
        assert isinstance(ref, Ref)
        send_exit(pid, "boom")
        assert await receive() == Down(ref, pid, "boom")

    await node.run(body)


async def test_P25_monitoring_never_affects_the_watcher(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        async def crash() -> None:
            await receive()
            raise RuntimeError("crash")

        pid = spawn(crash)
        ref = monitor(pid)
        send(pid, "go")
        down = await receive()
        assert down.ref == ref
        assert isinstance(down.reason, RuntimeError)
        info = process_info(me)
        assert info is not None
        assert info.links == ()
        assert info.trap_exits is False

    await node.run(body)


async def test_P25_a_monitor_is_one_way(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        async def watcher() -> None:
            monitor(me)
            await receive()

        pid = spawn(watcher)
        await trio.testing.wait_all_tasks_blocked()
        info = process_info(me)
        assert info is not None
        assert info.monitored_by == (pid,)
        assert info.monitors == ()
        ref = monitor(pid)
        send(pid, "stop")
        assert await receive() == Down(ref, pid, "normal")

    await node.run(body)


async def test_P25_monitoring_a_name_reports_the_name_and_node(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle, name="named")
        node_name = self_pid().node
        ref = monitor("named")
        ref2 = monitor(("named", node_name))
        send_exit(pid, "bye")
        assert await receive() == Down(ref, ("named", node_name), "bye")
        assert await receive() == Down(ref2, ("named", node_name), "bye")

    await node.run(body)


async def test_P26_noproc_for_a_dead_pid_and_an_unregistered_name(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        pid, _ref = spawn_monitor(quick)
        await receive()
        ref = monitor(pid)
        # delivered at once, no need to wait
        assert await receive(timeout=0) == Down(ref, pid, "noproc")
        ref = monitor("nobody")
        assert await receive(timeout=0) == Down(ref, ("nobody", self_pid().node), "noproc")

    await node.run(body)


async def test_P27_monitors_are_independent(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        refs = [monitor(pid) for _ in range(3)]
        assert len(set(refs)) == 3
        demonitor(refs[1])
        send_exit(pid, "bye")
        downs = [await receive(), await receive()]
        assert downs == [Down(refs[0], pid, "bye"), Down(refs[2], pid, "bye")]
        assert await nothing_left()

    await node.run(body)


async def test_P28_demonitor_stops_further_downs(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        ref = monitor(pid)
        assert demonitor(ref) is True
        info = process_info(pid)
        assert info is not None
        assert info.monitored_by == ()
        send_exit(pid, "bye")
        await trio.testing.wait_all_tasks_blocked()
        assert await nothing_left()

    await node.run(body)


async def test_P28_demonitor_leaves_a_queued_down_without_flush(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        ref = monitor(pid)
        send_exit(pid, "bye")
        await trio.testing.wait_all_tasks_blocked()
        assert demonitor(ref) is False  # had fired already
        assert await receive(timeout=0) == Down(ref, pid, "bye")

    await node.run(body)


async def test_P28_demonitor_flush(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        pid = spawn(idle)
        ref = monitor(pid)
        other = monitor(pid)
        send(me, "before")
        send_exit(pid, "bye")
        await trio.testing.wait_all_tasks_blocked()
        send(me, "after")
        assert demonitor(ref, flush=True) is False
        # Only that monitor's Down went; everything else stays, in order.
        assert await receive() == "before"
        assert await receive() == Down(other, pid, "bye")
        assert await receive() == "after"
        assert await nothing_left()

    await node.run(body)


async def test_P28_demonitor_of_an_unknown_ref_returns_false(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        ref = monitor(pid)
        assert demonitor(ref) is True
        assert demonitor(ref) is False

    await node.run(body)


async def test_P29_monitor_a_pid_on_an_unreachable_node_gives_noconnection(
    node: Node,
) -> None:
    async def body() -> None:
        remote = Pid("elsewhere@host", 3, 7)
        ref = monitor(remote)
        assert await receive(timeout=0) == Down(ref, remote, "noconnection")
        ref = monitor(("name", "elsewhere@host"))
        assert await receive(timeout=0) == Down(ref, ("name", "elsewhere@host"), "noconnection")

    await node.run(body)


async def test_monitor_rejects_a_bad_destination(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="destination"):
            monitor(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Ref"):
            demonitor("not a ref")  # type: ignore[arg-type]

    await node.run(body)


async def test_monitors_are_dropped_when_the_watcher_exits(node: Node) -> None:
    async def body() -> None:
        target = spawn(idle)

        async def watcher() -> None:
            monitor(target)
            await receive()

        pid, _ref = spawn_monitor(watcher)
        await trio.testing.wait_all_tasks_blocked()
        info = process_info(target)
        assert info is not None
        assert info.monitored_by == (pid,)
        send(pid, "stop")
        await receive()
        info = process_info(target)
        assert info is not None
        assert info.monitored_by == ()

    await node.run(body)
