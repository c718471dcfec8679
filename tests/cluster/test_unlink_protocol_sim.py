"""D8: the link protocol is symmetric and race-free (``Unlink`` with an id, ``UnlinkAck``).

In the simulation, with a delay on the link between the nodes so that signals
cross in flight; ``MockClock(autojump_threshold=0)`` makes the times exact.
"""

from __future__ import annotations

from typing import Any

import trio
from beamlet.actors import (
    ExitSignal,
    Pid,
    ReceiveTimeoutError,
    link,
    process_info,
    receive,
    self_pid,
    send,
    send_exit,
    trap_exits,
    unlink,
)
from beamlet.cluster.simulation import simulated_cluster


async def obey() -> None:
    """Trap exits; run ``("link" | "unlink", pid)`` commands; report exit signals to the sender."""
    trap_exits(True)
    boss: Pid | None = None
    while True:
        msg = await receive()
        if isinstance(msg, ExitSignal):
            if boss is not None:
                send(boss, ("exit", msg.pid, msg.reason))
            continue
        boss, steps = msg
        for action, pid in steps:
            (link if action == "link" else unlink)(pid)


async def order(pid: Pid, steps: list[tuple[str, Pid]]) -> None:
    """Have ``pid`` (running ``obey``) link or unlink, and report to the caller."""
    send(pid, (self_pid(), steps))


async def linked_pair(sim: Any) -> tuple[Pid, Pid]:
    """Start ``obey`` on nodes a and b, linked to each other."""
    pa = sim.spawn("a", obey)
    pb = sim.spawn("b", obey)
    await sim.run("a", order, pa, [("link", pb)])
    await trio.sleep(1)
    return pa, pb


async def links_of(pid: Pid) -> tuple[Pid, ...]:
    info = process_info(pid)
    assert info is not None
    return info.links


async def test_d8_a_link_and_an_unlink_that_cross_leave_no_link_on_either_side(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        pa, pb = await linked_pair(sim)
        assert await sim.run("a", links_of, pa) == (pb,)
        assert await sim.run("b", links_of, pb) == (pa,)

        # a unlinks while b unlinks and links again: the signals cross on the wire.
        sim.delay(1.0, "a", "b")
        await sim.run("a", order, pa, [("unlink", pb)])
        await sim.run("b", order, pb, [("unlink", pa), ("link", pa)])
        await trio.sleep(5)
        # Without the protocol, a would keep a link that b no longer has.
        assert await sim.run("a", links_of, pa) == ()
        assert await sim.run("b", links_of, pb) == ()
        for short in "ab":
            assert sim.node(short)._unlinking == {}  # every unlink acknowledged

        # And no exit signal travels along a link that is gone.
        sim.delay(0)

        async def kill_and_listen(target: Pid) -> Any:
            send_exit(target, "kill")
            try:
                return await receive(timeout=3)
            except ReceiveTimeoutError:
                return "nothing"

        async def watch_b() -> Any:
            send(pb, (self_pid(), []))  # pb reports its exit signals to this process
            return await kill_and_listen(pa)

        assert await sim.run("b", watch_b) == "nothing"


async def test_d8_a_link_made_again_before_the_ack_stays(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        pa, pb = await linked_pair(sim)
        sim.delay(1.0, "a", "b")
        await sim.run("a", order, pa, [("unlink", pb), ("link", pb)])
        await trio.sleep(5)
        assert await sim.run("a", links_of, pa) == (pb,)
        assert await sim.run("b", links_of, pb) == (pa,)
        assert sim.node("a")._unlinking == {}

        async def watch() -> Any:  # the link works: b's exit reaches a
            send(pa, (self_pid(), []))
            send_exit(pb, "kill")
            return await receive(timeout=5)

        assert await sim.run("a", watch) == ("exit", pb, "killed")


async def test_d8_an_unlink_not_acknowledged_is_dropped_with_the_connection(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        pa, pb = await linked_pair(sim)
        sim.partition({"a"}, {"b"})
        await sim.run("a", order, pa, [("unlink", pb)])
        await trio.sleep(0.1)
        assert sim.node("a")._unlinking == {pa: {pb: 1}}
        await sim.wait_until(lambda: "b@b" not in sim.nodes("a"), timeout=20)
        assert sim.node("a")._unlinking == {}


async def test_d8_an_unlink_queued_for_a_connection_that_fails_is_not_left_pending(
    autojump_clock: Any,
) -> None:
    """A link and an unlink queued while the connection is set up, which fails:
    nothing stays pending, and a link made after the reconnection holds on
    both sides."""
    async with simulated_cluster(["a", "b"]) as sim:
        pa = sim.spawn("a", obey)
        pb = sim.spawn("b", obey)

        sim.partition({"a"}, {"b"})
        await sim.wait_until(lambda: "b@b" not in sim.nodes("a"), timeout=30)
        await sim.run("a", order, pa, [("link", pb), ("unlink", pb)])
        await trio.sleep(30)  # the connection attempt fails
        assert sim.node("a")._unlinking == {}
        sim.heal()
        await sim.wait_connected()
        await sim.run("b", order, pb, [("link", pa)])
        await trio.sleep(2)
        assert await sim.run("a", links_of, pa) == (pb,)
        assert await sim.run("b", links_of, pb) == (pa,)
