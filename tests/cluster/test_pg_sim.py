"""Process groups across a simulated cluster (otp-semantics D24, §6 items 37-40)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio
from beamlet.actors import Exit, Pid, receive, self_pid, send, send_exit, whereis
from beamlet.cluster import pg
from beamlet.cluster.pg import GroupChange, NotLocalError, ScopeNotStartedError
from beamlet.cluster.simulation import SimulatedCluster, simulated_cluster

A, B, C = "a@a", "b@b", "c@c"


async def member(*groups: Any) -> None:
    """Join ``groups`` (a group listed twice is joined twice), then obey orders."""
    for group in groups:
        await pg.join(group)
    while True:
        msg = await receive()
        if msg[0] == "join":
            await pg.join(msg[1])
        elif msg[0] == "leave":
            send(msg[2], ("left", await pg.leave(msg[1])))
        elif msg[0] == "exit":
            raise Exit(msg[1])


def counted(pids: list[Pid]) -> Counter[Pid]:
    return Counter(pids)


async def members_on(sim: SimulatedCluster, short: str, group: Any) -> Counter[Pid]:
    async def read() -> Counter[Pid]:
        return counted(pg.members(group))

    return await sim.run(short, read)


async def wait_members(
    sim: SimulatedCluster, group: Any, expected: Counter[Pid], shorts: str, timeout: float = 10
) -> None:
    """Wait until every node in ``shorts`` lists exactly ``expected``."""
    with trio.fail_after(timeout):
        while True:
            seen = [await members_on(sim, short, group) for short in shorts]
            if all(s == expected for s in seen):
                return
            await trio.sleep(0.05)


async def test_pg37_join_leave_members_and_local_members(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        p1 = sim.spawn("a", member, "g")
        p2 = sim.spawn("a", member, "g", "g", "h")  # joins g twice
        p3 = sim.spawn("b", member, "g")
        expected = counted([p1, p2, p2, p3])
        await wait_members(sim, "g", expected, "ab")

        async def on_a() -> tuple[Any, ...]:
            me = self_pid()
            local = counted(pg.local_members("g"))
            groups = set(pg.groups())
            send(p2, ("leave", "g", me))
            first = await receive(timeout=5)
            send(p2, ("leave", "h", me))
            second = await receive(timeout=5)
            send(p2, ("leave", "h", me))  # no longer a member: not_joined
            third = await receive(timeout=5)
            return local, groups, first, second, third, counted(pg.local_members("g"))

        local, groups, first, second, third, after = await sim.run("a", on_a)
        assert local == counted([p1, p2, p2])
        assert groups == {"g", "h"}
        assert (first, second, third) == (("left", True), ("left", True), ("left", False))
        assert after == counted([p1, p2])  # one of its two memberships left
        await wait_members(sim, "g", counted([p1, p2, p3]), "ab")
        await wait_members(sim, "h", counted([]), "ab")

        async def groups_on_b() -> set[Any]:
            return set(pg.groups())

        assert await sim.run("b", groups_on_b) == {"g"}  # an empty group does not exist


async def test_pg38_joining_a_remote_pid_raises_not_local(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        remote = sim.spawn("b", member)

        async def join_remote() -> None:
            with pytest.raises(NotLocalError):
                await pg.join("g", remote)
            with pytest.raises(NotLocalError):
                await pg.leave("g", [self_pid(), remote])
            with pytest.raises(ScopeNotStartedError):
                pg.members("g", scope="nope")

        await sim.run("a", join_remote)
        assert await members_on(sim, "a", "g") == counted([])


async def test_pg37_dead_members_are_removed_everywhere(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        p1 = sim.spawn("a", member, "g", "g")
        p2 = sim.spawn("b", member, "g")
        await wait_members(sim, "g", counted([p1, p1, p2]), "abc")
        send_exit_from(sim, "c", p1, "kill")
        await wait_members(sim, "g", counted([p2]), "abc")
        sim.spawn("b", _tell, p2, ("exit", "normal"))
        await wait_members(sim, "g", counted([]), "abc")


def send_exit_from(sim: SimulatedCluster, short: str, pid: Pid, reason: Any) -> None:
    async def signal() -> None:
        send_exit(pid, reason)

    sim.spawn(short, signal)


async def _tell(pid: Pid, msg: Any) -> None:
    send(pid, msg)


async def test_pg39_members_of_a_node_that_goes_down_vanish(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        p1 = sim.spawn("a", member, "g")
        p2 = sim.spawn("b", member, "g")
        p3 = sim.spawn("c", member, "g")
        await wait_members(sim, "g", counted([p1, p2, p3]), "abc")
        sim.crash("b")
        await wait_members(sim, "g", counted([p1, p3]), "ac")


async def test_pg39_membership_resyncs_after_a_partition_heals(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        p1 = sim.spawn("a", member, "g")
        p2 = sim.spawn("b", member, "g")
        await wait_members(sim, "g", counted([p1, p2]), "ab")
        sim.partition({"a"}, {"b"})
        await sim.wait_until(lambda: sim.nodes("a") == [] and sim.nodes("b") == [])
        assert await members_on(sim, "a", "g") == counted([p1])
        # changes made during the partition
        p3 = sim.spawn("a", member, "g", "other")
        sim.spawn("b", _tell, p2, ("exit", "normal"))
        p4 = sim.spawn("b", member, "g")
        await wait_members(sim, "g", counted([p1, p3]), "a")
        await wait_members(sim, "g", counted([p4]), "b")
        sim.heal()
        await sim.wait_connected()
        await wait_members(sim, "g", counted([p1, p3, p4]), "ab")
        await wait_members(sim, "other", counted([p3]), "ab")


async def test_pg_monitor_group_reports_joins_and_leaves(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        p1 = sim.spawn("a", member, "g")
        await wait_members(sim, "g", counted([p1]), "ab")

        async def watch() -> list[Any]:
            ref, current = await pg.monitor("g")
            p2 = sim.spawn("b", member, "g")  # a remote join
            joined = await receive(timeout=5)
            send(p1, ("exit", "bye"))  # a local member exits
            left = await receive(timeout=5)
            sim.crash("b")  # a node goes down with its members
            gone = await receive(timeout=10)
            assert await pg.demonitor(ref)
            assert not await pg.demonitor(ref)
            return [ref, current, p2, joined, left, gone]

        ref, current, p2, joined, left, gone = await sim.run("a", watch)
        assert current == [p1]
        assert joined == GroupChange(ref, "join", "g", (p2,))
        assert left == GroupChange(ref, "leave", "g", (p1,))
        assert gone == GroupChange(ref, "leave", "g", (p2,))


async def test_pg40_a_restarted_scope_loses_its_local_members_and_keeps_remote_ones(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        p1 = sim.spawn("a", member, "g")
        p2 = sim.spawn("b", member, "g")
        await wait_members(sim, "g", counted([p1, p2]), "ab")

        async def kill_scope() -> None:
            scope = whereis("beamlet_pg_default")
            assert scope is not None
            send_exit(scope, "kill")
            # The kernel starts a new scope, with an empty table.
            while whereis("beamlet_pg_default") in (None, scope):  # noqa: ASYNC110
                await trio.sleep(0.01)
            assert pg.local_members("g") == []

        await sim.run("a", kill_scope)
        # a's own member is forgotten (it did not leave: the scope forgot it),
        # on a and on b; b's member comes back from b.
        await wait_members(sim, "g", counted([p2]), "ab")
        assert sim.node("a").process_info(p1) is not None


async def test_partition_of_three_nodes_heals_without_duplicate_members(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        pids = {short: sim.spawn(short, member, "g", "g") for short in "abc"}
        everyone = counted([pid for pid in pids.values() for _ in range(2)])
        await wait_members(sim, "g", everyone, "abc")
        for _round in range(3):
            sim.partition({"a"}, {"b", "c"})
            await sim.wait_until(lambda: sim.nodes("a") == [] and sim.nodes("b") == [C])
            await wait_members(sim, "g", counted([pids["a"], pids["a"]]), "a")
            await wait_members(sim, "g", everyone - counted([pids["a"], pids["a"]]), "bc")
            sim.heal()
            await sim.wait_connected()
            await wait_members(sim, "g", everyone, "abc")
            await trio.sleep(5)  # and it stays so
            await wait_members(sim, "g", everyone, "abc", timeout=0.1)


async def test_pg_bad_groups_raise_in_the_caller_and_bad_messages_do_not_kill_the_scope(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        scope = sim.node("a").whereis("beamlet_pg_default")

        async def caller() -> None:
            with pytest.raises(TypeError):
                await pg.join(["a", "list"])  # unhashable
            with pytest.raises(TypeError):
                await pg.join(("fn", print))  # cannot cross to other nodes

        await sim.run("a", caller)

        async def hostile() -> None:
            me = self_pid()
            for msg in [
                ("sync", me, {"g": 5}),
                ("sync", me, {"g": [Pid(A, 1, 1)]}),  # pids of another node
                ("sync", me, [1, 2]),
                ("join", me, "g", 5),
                ("discover", "not a pid"),
                ("leave",),
                "garbage",
            ]:
                send(("beamlet_pg_default", A), msg)

        await sim.run("b", hostile)
        p1 = sim.spawn("a", member, "g")
        p2 = sim.spawn("b", member, "g")
        await wait_members(sim, "g", counted([p1, p2]), "ab")
        assert sim.node("a").whereis("beamlet_pg_default") == scope
