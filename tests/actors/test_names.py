"""Registered names (otp-semantics P10-P13)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from beamlet.actors import (
    Down,
    NameTakenError,
    Node,
    NoProcError,
    NoSuchNameError,
    Pid,
    monitor,
    receive,
    register,
    registered,
    self_pid,
    send,
    send_exit,
    spawn,
    spawn_monitor,
    unregister,
    whereis,
)


async def idle() -> None:
    await receive()


async def test_P10_register_associates_a_name_with_a_live_process(node: Node) -> None:
    async def body() -> None:
        pid = spawn(idle)
        register("worker", pid)
        assert whereis("worker") == pid
        send("worker", "hello")
        register("me")
        assert whereis("me") == self_pid()

    await node.run(body)


async def test_P10_register_a_taken_name_raises(node: Node) -> None:
    async def body() -> None:
        register("taken")
        other = spawn(idle)
        with pytest.raises(NameTakenError, match="taken"):
            register("taken", other)
        assert whereis("taken") == self_pid()

    await node.run(body)


async def test_P10_one_name_per_process(node: Node) -> None:
    async def body() -> None:
        register("first")
        with pytest.raises(NameTakenError, match="first"):
            register("second")
        assert whereis("second") is None

    await node.run(body)


async def test_P10_register_a_dead_pid_raises(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        pid, _ref = spawn_monitor(quick)
        await receive()
        with pytest.raises(NoProcError, match="not alive"):
            register("late", pid)
        assert "late" not in registered()

    await node.run(body)


async def test_P10_names_are_non_empty_strings(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(TypeError, match="str"):
            register(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="str"):
            register(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            register("")
        assert registered() == []

    await node.run(body)


async def test_P11_whereis_unregister_registered(node: Node) -> None:
    async def body() -> None:
        assert whereis("nobody") is None
        a = spawn(idle, name="a")
        spawn(idle, name="b")
        assert sorted(registered()) == ["a", "b"]
        unregister("b")
        assert registered() == ["a"]
        assert whereis("b") is None
        with pytest.raises(NoSuchNameError, match="b"):
            unregister("b")
        # The process itself lives on, and may take a name again.
        unregister("a")
        register("again", a)
        assert whereis("again") == a

    await node.run(body)


async def test_P12_name_released_before_down(node: Node) -> None:
    async def body() -> None:
        for reason in ["normal", "boom", "kill"]:

            async def named() -> None:
                register("short-lived")
                await receive()

            pid = spawn(named)
            await trio.testing.wait_all_tasks_blocked()
            ref = monitor("short-lived")
            if reason == "normal":
                send(pid, "stop")
            else:
                send_exit(pid, reason)
            down = await receive()
            assert down.ref == ref
            # By the time the Down is here, the name is already free.
            assert whereis("short-lived") is None
            assert "short-lived" not in registered()

    await node.run(body)


async def test_P12_name_can_be_taken_again_after_exit(node: Node) -> None:
    async def body() -> None:
        async def quick() -> None:
            pass

        pid, ref = spawn_monitor(quick, name="reused")
        assert await receive() == Down(ref, pid, "normal")
        again = spawn(idle, name="reused")
        assert whereis("reused") == again

    await node.run(body)


async def test_P13_a_name_node_pair_addresses_a_local_name(node: Node) -> None:
    async def body() -> None:
        me = self_pid()

        async def echo() -> None:
            send(me, ("echo", await receive()))

        spawn(echo, name="echo")
        send(("echo", me.node), "via pair")
        assert await receive() == ("echo", "via pair")

    await node.run(body)


async def test_spawn_with_a_taken_name_starts_nothing(node: Node) -> None:
    async def body() -> None:
        spawn(idle, name="solo")
        started: list[int] = []

        async def second() -> None:
            started.append(1)

        before = len(registered())
        with pytest.raises(NameTakenError):
            spawn(second, name="solo")
        await trio.testing.wait_all_tasks_blocked()
        assert started == []
        assert len(registered()) == before

    await node.run(body)


async def test_register_a_pid_of_another_node_raises(node: Node) -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="local"):
            register("remote", Pid("other@host", 1, 1))
        with pytest.raises(TypeError, match="Pid"):
            register("bad", "not a pid")  # type: ignore[arg-type]

    await node.run(body)


async def test_names_can_be_used_outside_processes(node: Node) -> None:
    pid = node.spawn(idle, name="outside")
    assert node.whereis("outside") == pid == whereis("outside")
    assert node.registered() == ["outside"] == registered()
    send("outside", "from outside")
    unregister("outside")
    assert whereis("outside") is None
