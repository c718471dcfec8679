"""Links (otp-semantics P14-P17, and P29 towards a node that cannot be reached)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Down,
    ExitSignal,
    Node,
    NoProcError,
    Pid,
    ReceiveTimeoutError,
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
    unlink,
)


async def idle() -> None:
    await receive()


def links_of(pid: Pid) -> tuple[Pid, ...]:
    info = process_info(pid)
    assert info is not None
    return info.links


async def test_P14_links_are_bidirectional_and_single(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        pid = spawn(idle)
        link(pid)
        link(pid)  # no-op: at most one link per pair
        assert links_of(me) == (pid,)
        assert links_of(pid) == (me,)
        unlink(pid)  # one unlink removes it
        assert links_of(me) == ()
        assert links_of(pid) == ()

    await node.run(body)


async def test_P14_link_to_self_is_a_no_op(node: Node) -> None:
    async def body() -> None:
        link(self_pid())
        assert links_of(self_pid()) == ()

    await node.run(body)


async def test_P14_a_link_carries_the_exit_either_way(node: Node) -> None:
    async def body() -> None:
        trap_exits()

        async def links_back_and_dies(parent: Pid) -> None:
            link(parent)
            await receive()
            raise RuntimeError("child side")

        child = spawn(links_back_and_dies, self_pid())
        await trio.testing.wait_all_tasks_blocked()
        send(child, "die")
        sig = await receive()
        assert sig.pid == child
        assert isinstance(sig.reason, RuntimeError)

        # and the other way round: this side's exit reaches the partner
        async def partner() -> None:
            await receive()

        async def dies_linked() -> None:
            link(watched)
            raise ValueError("parent side")

        watched = spawn(partner)
        ref = monitor(watched)
        spawn(dies_linked)
        down = await receive(lambda m: isinstance(m, Down))
        assert down.ref == ref
        assert isinstance(down.reason, ValueError)

    await node.run(body)


async def test_P15_link_to_dead_pid_raises_noproc(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        pid, _ref = spawn_monitor(quick)
        await receive()
        with pytest.raises(NoProcError, match="no such process"):
            link(pid)
        assert links_of(self_pid()) == ()

    await node.run(body)


async def test_P15_trapping_link_to_dead_pid_gets_exit_signal_noproc(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        pid, _ref = spawn_monitor(quick)
        await receive()
        trap_exits()
        link(pid)  # no exception ...
        assert await receive() == ExitSignal(pid, "noproc")  # ... a signal instead
        assert links_of(self_pid()) == ()  # and no link

    await node.run(body)


async def test_P16_unlink_removes_the_link_on_both_sides(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        pid = spawn_link(idle)
        unlink(pid)
        assert links_of(pid) == ()
        ref = monitor(pid)
        send_exit(pid, "boom")
        assert await receive() == Down(ref, pid, "boom")  # and we are still alive
        assert links_of(me) == ()

    await node.run(body)


async def test_P16_unlink_without_a_link_or_of_a_dead_pid_is_fine(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        alive = spawn(idle)
        assert unlink(alive) is None
        dead, _ref = spawn_monitor(quick)
        await receive()
        assert unlink(dead) is None

    await node.run(body)


async def test_P16_an_exit_signal_queued_before_unlink_stays(node: Node) -> None:
    async def body() -> None:
        trap_exits()

        async def crash() -> None:
            raise RuntimeError("gone")

        pid = spawn_link(crash)
        await trio.testing.wait_all_tasks_blocked()
        unlink(pid)
        # The signal arrived before the unlink: it is a message by now; flush it.
        sig = await receive(lambda m: isinstance(m, ExitSignal) and m.pid == pid, timeout=0)
        assert isinstance(sig.reason, RuntimeError)

    await node.run(body)


async def test_P17_every_linked_process_gets_the_exit_reason(node: Node) -> None:
    async def body() -> None:
        me = self_pid()
        trap_exits()

        async def linked_watcher(hub: Pid) -> None:
            trap_exits()
            link(hub)
            send(me, ("ready", self_pid()))
            send(me, ("got", self_pid(), await receive()))

        async def hub() -> None:
            await receive()
            raise Exception("hub down")

        h = spawn_link(hub)
        watchers = [spawn(linked_watcher, h) for _ in range(3)]
        for _ in watchers:
            await receive(lambda m: isinstance(m, tuple) and m[0] == "ready")
        send(h, "go")
        mine = await receive(lambda m: isinstance(m, ExitSignal))
        assert mine.pid == h
        for w in watchers:
            _, _, sig = await receive(lambda m, w=w: isinstance(m, tuple) and m[:2] == ("got", w))
            assert sig == ExitSignal(h, mine.reason)
            assert sig.reason is mine.reason

    await node.run(body)


async def test_P29_link_to_a_pid_on_an_unreachable_node_gives_noconnection(
    node: Node,
) -> None:
    async def body() -> None:
        remote = Pid("elsewhere@host", 1, 1)
        trap_exits()
        link(remote)
        assert await receive() == ExitSignal(remote, "noconnection")

        async def not_trapping() -> None:
            link(remote)
            await receive()

        pid, ref = spawn_monitor(not_trapping)
        assert await receive() == Down(ref, pid, "noconnection")

    await node.run(body)


async def test_links_are_removed_when_a_partner_exits(node: Node) -> None:
    async def body() -> None:
        trap_exits()
        me = self_pid()
        pid = spawn_link(idle)
        send(pid, "stop")
        assert await receive() == ExitSignal(pid, "normal")
        assert links_of(me) == ()
        with pytest.raises(ReceiveTimeoutError):
            await receive(timeout=0)

    await node.run(body)
