"""Distribution in the simulation: messages, links, monitors, lost connections, backpressure.

Every test runs a cluster of nodes in one ``trio.run`` over the in-memory
network, under ``MockClock(autojump_threshold=0)``: virtual time is exact.
Test names cite the rules of otp-semantics.md (P for processes, D for
distribution, G for GenServer).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from beamlet.actors import (
    Down,
    Exit,
    ExitSignal,
    Pid,
    demonitor,
    link,
    monitor,
    receive,
    self_pid,
    send,
    send_exit,
    trap_exits,
    unlink,
)
from beamlet.cluster import (
    DistributionBusyError,
    NodeDown,
    NodeUp,
    monitor_nodes,
)
from beamlet.cluster._events import Send
from beamlet.cluster.simulation import simulated_cluster

B = "b@b"


async def forever() -> None:
    await trio.sleep_forever()


async def echo() -> None:
    """Answer ``(pid, x)`` with ``("echo", x)``; exit with ``x`` on ``("exit", x)``."""
    while True:
        msg = await receive()
        if msg[0] == "exit":
            raise Exit(msg[1])
        send(msg[0], ("echo", msg[1]))


async def forward_to(target: Pid) -> None:
    """Trap exits and forward every message to ``target``, as ``("forwarded", msg)``.

    (Wrapped: another node refuses a plain message that is an ``ExitSignal``,
    which only the runtime delivers.)
    """
    trap_exits(True)
    while True:
        send(target, ("forwarded", await receive()))


async def exit_with(reason: Any, after: float = 0.0) -> None:
    await trio.sleep(after)
    raise Exit(reason)


# -- messages ----------------------------------------------------------------------------


async def test_send_by_pid_and_by_name_across_nodes(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        pid = sim.spawn("b", echo, name="echo")

        async def client() -> list[Any]:
            send(pid, (self_pid(), 1))
            send(("echo", B), (self_pid(), 2))
            return [await receive(timeout=1), await receive(timeout=1)]

        assert await sim.run("a", client) == [("echo", 1), ("echo", 2)]
        assert pid.node == B


async def test_d17_send_to_missing_remote_name_is_dropped_silently(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        sim.spawn("b", echo, name="echo")

        async def client() -> Any:
            send(("nobody", B), (self_pid(), "lost"))  # no error, no answer
            send(("echo", B), (self_pid(), "found"))
            return await receive(timeout=1)

        assert await sim.run("a", client) == ("echo", "found")
        assert sim.nodes("a") == [B]  # the connection is unharmed


async def test_p2_d16_order_is_kept_per_pair_over_a_connection(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        got: list[Any] = []

        async def sink() -> None:
            while True:
                msg = await receive()
                got.append(msg)
                if msg == "done":
                    return

        pid = sim.spawn("b", sink, name="sink")

        async def client() -> None:
            for i in range(500):
                send(pid, i)
                send(("sink", B), -i)  # by name, on the same connection
                if i % 50 == 0:
                    await trio.lowlevel.checkpoint()  # let the writer batch in the middle
            send(pid, "done")

        await sim.run("a", client)
        await sim.wait_until(lambda: bool(got) and got[-1] == "done", timeout=5)
        expected: list[Any] = []
        for i in range(500):
            expected += [i, -i]
        assert got == [*expected, "done"]


async def test_codec_typeerror_is_raised_in_the_sender_at_send(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"], max_frame_size=64 * 1024) as sim:
        pid = sim.spawn("b", echo)

        async def client() -> Any:
            with pytest.raises(TypeError, match="function"):
                send(pid, lambda: 1)
            with pytest.raises(TypeError):
                send(("echo", B), {"fn": print})
            with pytest.raises(ValueError):  # over max_frame_size: refused before it leaves
                send(pid, b"x" * 100_000)
            send(pid, (self_pid(), "still connected"))
            return await receive(timeout=1)

        assert await sim.run("a", client) == ("echo", "still connected")


# -- links ---------------------------------------------------------------------------------


async def test_p18_remote_link_exit_propagates_both_ways_with_the_reason(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def scenario() -> list[Any]:
            trap_exits(True)
            me = self_pid()
            out = []
            # a -> b: the remote process exits abnormally; we trap it.
            remote = sim.spawn("b", exit_with, "boom", 1.0)
            link(remote)
            out.append(await receive(lambda m: isinstance(m, ExitSignal), timeout=5))
            # b -> a: a remote process linked to us (from its side) sees our helper exit.
            helper_pid = sim.spawn("a", exit_with, "crash", 1.0)

            async def linked_on_b() -> None:
                link(helper_pid)
                await trio.sleep_forever()

            victim = sim.spawn("b", linked_on_b)
            ref = monitor(victim)
            out.append(await receive(lambda m: isinstance(m, Down), timeout=5))
            # "normal" does not kill a non-trapping remote process.
            normal = sim.spawn("a", exit_with, "normal", 1.0)

            async def survivor() -> None:
                link(normal)
                await receive(lambda m: m == "stop")

            alive = sim.spawn("b", survivor)
            ref2 = monitor(alive)
            await trio.sleep(3)
            send(alive, "stop")
            out.append(await receive(lambda m: isinstance(m, Down) and m.ref == ref2, timeout=5))
            assert me == self_pid()
            return [out[0], (out[1].ref == ref, out[1].reason), out[2].reason]

        results = await sim.run("a", scenario)
        assert results[0].reason == "boom"
        assert results[0].pid.node == B
        assert results[1] == (True, "crash")
        assert results[2] == "normal"  # it lived until told to stop


async def test_p20_kill_through_a_remote_link_arrives_as_killed_and_is_trappable(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def scenario() -> tuple[Any, Any]:
            trap_exits(True)
            remote = sim.spawn("b", forever)
            link(remote)
            await trio.sleep(0.5)
            sim.spawn("b", _kill, remote)  # a local "kill" on b
            signal = await receive(lambda m: isinstance(m, ExitSignal), timeout=5)
            return signal.pid, signal.reason

        pid_reason = await sim.run("a", scenario)
        assert pid_reason[1] == "killed"


async def _kill(pid: Pid) -> None:
    send_exit(pid, "kill")


async def test_p20_send_exit_kill_to_a_remote_pid_gives_killed(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def scenario() -> Any:
            target = sim.spawn("b", forever, trap_exits=True)  # trapping does not help
            ref = monitor(target)
            send_exit(target, "kill")
            return await receive(lambda m: isinstance(m, Down) and m.ref == ref, timeout=5)

        down = await sim.run("a", scenario)
        assert down.reason == "killed"


async def test_p21_send_exit_to_a_trapping_remote_pid_arrives_as_exit_signal(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def scenario() -> Any:
            me = self_pid()
            target = sim.spawn("b", forward_to, me)
            send_exit(target, "please")
            return await receive(timeout=5), me

        signal, me = await sim.run("a", scenario)
        assert signal == ("forwarded", ExitSignal(me, "please"))


# -- monitors ----------------------------------------------------------------------------


async def test_p25_remote_monitor_by_pid_and_by_name(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        by_pid = sim.spawn("b", echo)
        by_name = sim.spawn("b", echo, name="named")

        async def scenario() -> tuple[Any, Any, Any, Any]:
            ref1 = monitor(by_pid)
            ref2 = monitor(("named", B))
            send(by_pid, ("exit", "one"))
            send(by_name, ("exit", "two"))
            d1 = await receive(lambda m: isinstance(m, Down) and m.ref == ref1, timeout=5)
            d2 = await receive(lambda m: isinstance(m, Down) and m.ref == ref2, timeout=5)
            return ref1, d1, ref2, d2

        ref1, d1, ref2, d2 = await sim.run("a", scenario)
        assert d1 == Down(ref1, by_pid, "one")
        assert d2 == Down(ref2, ("named", B), "two")


async def test_p26_remote_monitor_of_a_dead_pid_or_missing_name_gives_noproc(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        dead = sim.spawn("b", exit_with, "gone")
        await trio.sleep(1)

        async def scenario() -> tuple[Any, Any, Any, Any]:
            ref1 = monitor(dead)
            ref2 = monitor(("nobody", B))
            d1 = await receive(lambda m: isinstance(m, Down) and m.ref == ref1, timeout=5)
            d2 = await receive(lambda m: isinstance(m, Down) and m.ref == ref2, timeout=5)
            return ref1, d1, ref2, d2

        ref1, d1, ref2, d2 = await sim.run("a", scenario)
        assert d1 == Down(ref1, dead, "noproc")
        assert d2 == Down(ref2, ("nobody", B), "noproc")


async def test_p15_link_to_dead_remote_pid_gives_noproc(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        dead = sim.spawn("b", exit_with, "gone")
        await trio.sleep(1)

        async def trapping() -> Any:
            trap_exits(True)
            link(dead)
            return await receive(timeout=5)

        assert await sim.run("a", trapping) == ExitSignal(dead, "noproc")

        async def not_trapping() -> None:
            link(dead)
            await trio.sleep_forever()

        with pytest.raises(Exit) as info:
            await sim.run("a", not_trapping)
        assert info.value.reason == "noproc"


async def test_p30_link_to_dead_new_node_pid_of_old_incarnation_never_reaches_the_new(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        old = sim.spawn("b", echo, name="echo")
        old_creation = sim.node("b").creation
        await sim.restart("b")
        assert sim.node("b").creation != old_creation
        await sim.wait_connected()
        new = sim.spawn("b", echo, name="echo")
        assert (new.node, new.id) == (old.node, old.id)  # same name and number, new creation
        assert new != old

        async def scenario() -> list[Any]:
            trap_exits(True)
            send(old, (self_pid(), "to the old one"))
            send(new, (self_pid(), "to the new one"))
            first = await receive(timeout=5)
            link(old)
            signal = await receive(lambda m: isinstance(m, ExitSignal), timeout=5)
            ref = monitor(old)
            down = await receive(lambda m: isinstance(m, Down), timeout=5)
            return [first, signal, down.ref == ref, down.reason]

        first, signal, same_ref, reason = await sim.run("a", scenario)
        assert first == ("echo", "to the new one")
        assert signal == ExitSignal(old, "noproc")
        assert same_ref and reason == "noproc"
        # the new incarnation's process is untouched by all of that
        assert sim.node("b").process_info(new) is not None


async def test_p28_remote_demonitor_and_unlink_stop_the_signals(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def scenario() -> list[Any]:
            trap_exits(True)
            target = sim.spawn("b", echo)
            ref = monitor(target)
            link(target)
            assert demonitor(ref)
            unlink(target)
            flushed = sim.spawn("b", exit_with, "flushed")
            ref2 = monitor(flushed)
            await trio.sleep(1)  # its Down is in the mailbox now
            assert not demonitor(ref2, flush=True)  # fired already: removed from the mailbox
            send(target, ("exit", "crash"))
            try:
                return [await receive(timeout=5)]
            except trio.TooSlowError:
                return []

        assert await sim.run("a", scenario) == []


# -- lost connections ----------------------------------------------------------------------


async def test_p29_d15_crash_gives_noconnection_to_links_and_monitors(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        remote = sim.spawn("b", forever)
        remote_named = sim.spawn("b", forever, name="svc")
        seen: list[Any] = []

        async def not_trapping() -> None:
            link(remote_named)
            await trio.sleep_forever()

        async def watcher(pid: Pid) -> None:
            seen.append(("watching", monitor(pid)))
            seen.append(await receive())

        victim = sim.spawn("a", not_trapping)
        sim.spawn("a", watcher, victim)

        async def trapping() -> list[Any]:
            trap_exits(True)
            link(remote)
            ref1 = monitor(remote)
            ref2 = monitor(("svc", B))
            await trio.sleep(1)
            sim.crash("b")
            got = [await receive(timeout=10) for _ in range(3)]
            return [ref1, ref2, got]

        ref1, ref2, got = await sim.run("a", trapping)
        assert ExitSignal(remote, "noconnection") in got
        assert Down(ref1, remote, "noconnection") in got
        assert Down(ref2, ("svc", B), "noconnection") in got
        await sim.wait_until(lambda: len(seen) == 2)
        ref = seen[0][1]
        assert seen[1] == Down(ref, victim, "noconnection")  # it died of it


async def test_p30_d14_a_node_restarted_behind_a_partition_replaces_its_old_incarnation(
    autojump_clock: Any,
) -> None:
    # b crashes and restarts while a cannot see it: a still holds the old
    # connection when the new b connects. a must drop the old incarnation
    # (NodeDown, noconnection) before it reports the new one up.
    async with simulated_cluster(["a", "b"], ticktime=10.0) as sim:
        old = sim.spawn("b", forever)
        got: list[Any] = []

        async def watcher() -> None:
            trap_exits(True)
            monitor_nodes(True)
            link(old)
            while True:
                got.append(await receive())

        sim.spawn("a", watcher)
        await trio.sleep(0.5)
        sim.partition({"a"}, {"b"})
        await sim.restart("b")
        await trio.sleep(1)
        assert sim.nodes("a") == [B]  # a has not noticed anything
        sim.heal()
        await sim.wait_until(lambda: len(got) == 3, timeout=5)
        assert got == [ExitSignal(old, "noconnection"), NodeDown(B, "connection_closed"), NodeUp(B)]
        assert sim.distribution("a").peers[B].creation == sim.node("b").creation
        pid = sim.spawn("b", echo)

        async def ping() -> Any:
            send(pid, (self_pid(), "new b"))
            return await receive(timeout=1)

        assert await sim.run("a", ping) == ("echo", "new b")
        await trio.sleep(30)  # and nothing else happens
        assert len(got) == 3


async def test_p29_monitor_of_a_pid_on_a_down_node_gives_noconnection_at_once(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        remote = sim.spawn("b", forever)
        await sim.stop("b")
        await sim.wait_until(lambda: sim.nodes("a") == [])

        async def scenario() -> tuple[Any, Any, float]:
            start = trio.current_time()
            ref = monitor(remote)
            down = await receive(timeout=30)
            return ref, down, trio.current_time() - start

        ref, down, elapsed = await sim.run("a", scenario)
        assert down == Down(ref, remote, "noconnection")
        assert elapsed < 0.5  # the connection attempt is refused at once


async def test_p29_monitor_of_a_pid_on_an_unknown_node_gives_noconnection_at_once(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a"]) as sim:
        ghost = Pid("ghost@nowhere", 1, 1)

        async def scenario() -> tuple[Any, Any]:
            ref = monitor(ghost)
            return ref, await receive(timeout=0)

        ref, down = await sim.run("a", scenario)
        assert down == Down(ref, ghost, "noconnection")


# -- backpressure ------------------------------------------------------------------------


async def test_d18_d20_a_flood_on_a_slow_link_raises_busy_and_signals_still_pass(
    autojump_clock: Any,
) -> None:
    busy_limit = 64 * 1024
    async with simulated_cluster(["a", "b"], busy_limit=busy_limit) as sim:
        received: list[int] = []

        async def sink() -> None:
            while True:
                msg = await receive()
                received.append(msg[0])

        target = sim.spawn("b", sink)
        linked = sim.spawn("b", forever)
        watched = sim.spawn("b", forever)
        peer = sim.distribution("a").peers[B]
        # Count what really leaves node a: bytes handed to the network and done.
        stream: Any = peer.stream
        write = stream.send_all
        written = 0

        async def counting_send_all(data: Any) -> None:
            nonlocal written
            await write(data)
            written += len(data)

        stream.send_all = counting_send_all
        sim.delay(0.5, "a", "b")  # a slow link: every write takes half a second
        payload = b"x" * 1000
        frame = len(peer.session.encode(Send(target, (0, payload)))) + 8

        async def flood() -> list[Any]:
            trap_exits(True)
            base = written + peer.out_bytes
            emitted = 0
            worst = 0
            sent = 0
            with pytest.raises(DistributionBusyError):
                for i in range(10_000):
                    send(target, (i, payload))
                    sent += 1
                    emitted += len(peer.session.encode(Send(target, (i, payload))))
                    worst = max(worst, base + emitted - written)  # not yet on the network
                    if i % 7 == 0:
                        await trio.sleep(0.01)
            # while busy, signals are not refused
            link(linked)
            ref = monitor(watched)
            send_exit(linked, "stop")
            send_exit(watched, "kill")
            got = [
                await receive(lambda m: isinstance(m, ExitSignal), timeout=30),
                await receive(lambda m: isinstance(m, Down), timeout=30),
            ]
            await peer.wait_drained()
            send(target, (sent, payload))  # the link drained: sending works again
            return [sent + 1, worst, ref, got]

        sent, worst, ref, got = await sim.run("a", flood)
        assert busy_limit // frame <= sent < 10_000
        assert worst <= busy_limit + frame  # the limit plus one message
        assert got[0] == ExitSignal(linked, "stop")
        assert got[1] == Down(ref, watched, "killed")
        await sim.wait_until(lambda: len(received) == sent)
        assert received == list(range(sent))  # nothing was dropped silently
