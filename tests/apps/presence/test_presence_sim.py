"""Presence across a simulated cluster: real nodes, PubSub and shards, virtual time.

With the autojump clock, times are exact: a join is seen everywhere within
``2 x broadcast_period``; a crashed node's presences are gone within
``down_period``; a partition that heals gives back the same list with no
duplicate join delivered to any subscriber; a rolling restart of every node
loses no presence of a live process; a restarted node's previous
incarnation is removed at once.
"""

from __future__ import annotations

from typing import Any

import trio
from beamlet.cluster.simulation import simulated_cluster
from beamlet.supervisors import Supervisor
from presence_nodes import OPTIONS, Nodes

BP = OPTIONS["broadcast_period"]
DOWN = OPTIONS["down_period"]


async def started(sim: Any, shorts: str = "abc") -> Nodes:
    nodes = Nodes(sim)
    for short in shorts:
        await nodes.start(short)
    # Every shard has heard every other (their first heartbeats are at most
    # a quarter period after they start, and then every period).
    await trio.sleep(2 * BP)
    return nodes


def no_errors(nodes: Nodes) -> None:
    for short, view in nodes.views.items():
        assert view.errors == [], short


async def test_a_join_is_seen_on_every_node_within_two_broadcast_periods(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        nodes = await started(sim)
        for i, short in enumerate("abcabc"):
            await trio.sleep(0.37 * i)  # at various points of the heartbeat cycle
            t0 = trio.current_time()
            ref = await nodes.track(short, f"user{i}")
            assert nodes.views[short].joined_at[ref] == t0  # at once on its own node
            while not all(ref in v.shown for v in nodes.views.values()):  # noqa: ASYNC110 - polling what other nodes list
                await trio.sleep(0.001)
            latest = max(v.joined_at[ref] for v in nodes.views.values())
            assert latest - t0 <= 2 * BP
        no_errors(nodes)


async def test_a_crashed_nodes_presences_are_gone_within_down_period(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        nodes = await started(sim)
        gone = {await nodes.track("a", "alice"), await nodes.track("a", "alice2")}
        kept = {await nodes.track("b", "bob"), await nodes.track("c", "carol")}
        await nodes.wait_listed("abc", gone | kept)
        # Right after a heartbeat of a (the worst case): the longest silence.
        await trio.sleep(0.5)
        t0 = trio.current_time()
        sim.crash("a")
        await nodes.wait_listed("bc", kept, timeout=2 * DOWN)
        for short in "bc":
            view = nodes.views[short]
            for ref in gone:
                assert 0 < view.left_at[ref] - t0 <= DOWN
            assert set(view.shown) == kept
        no_errors(nodes)


async def test_a_partition_that_heals_gives_back_the_same_list_without_duplicate_joins(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        nodes = await started(sim)
        refs = {await nodes.track(short, f"{short}{i}") for short in "abc" for i in range(2)}
        await nodes.wait_listed("abc", refs)

        sim.partition({"a"}, {"b", "c"})
        # Changes on both sides while they cannot see each other.
        ref_a = await nodes.track("a", "a-new")
        ref_b = await nodes.track("b", "b-new")
        c0 = next(r for r in refs if nodes.pid_of[r].node == "c@c")
        await nodes.kill(c0)
        refs = (refs - {c0}) | {ref_a, ref_b}
        a_side = {r for r in refs if nodes.pid_of[r].node == "a@a"}
        await trio.sleep(DOWN + BP)
        # Each side sees the other as down: only its own side's presences.
        assert await nodes.listed("a") == a_side
        assert await nodes.listed("b") == await nodes.listed("c") == refs - a_side

        sim.heal()
        await nodes.wait_listed("abc", refs)
        await trio.sleep(5 * BP)  # and it stays so
        for short in "abc":
            assert await nodes.listed(short) == refs
            assert set(nodes.views[short].shown) == refs
        no_errors(nodes)


async def test_a_rolling_restart_loses_no_presence_of_a_live_process(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        nodes = await started(sim)
        live = {await nodes.track(short, f"{short}-first") for short in "abc"}
        await nodes.wait_listed("abc", live)
        for short in "abc":
            others = [o for o in "abc" if o != short]
            dead = {r for r in live if nodes.pid_of[r].node == f"{short}@{short}"}
            t0 = trio.current_time()
            await sim.restart(short)
            await sim.wait_connected()
            await nodes.start(short)
            # The previous incarnation is removed at once (its new heartbeat),
            # not after down_period.
            live -= dead
            await nodes.wait_listed(others, live, timeout=DOWN)
            for other in others:
                assert all(nodes.views[other].left_at[r] - t0 < 2 * BP for r in dead)
            new = await nodes.track(short, f"{short}-second")
            live.add(new)
            await nodes.wait_listed("abc", live, timeout=DOWN)
            # No presence of a process still alive ever left a live node's view.
            for other in others:
                assert not (set(nodes.views[other].left_at) & (live - {new}))
            await trio.sleep(2 * BP)
        for short in "abc":
            assert await nodes.listed(short) == live
            assert set(nodes.views[short].shown) == live
        no_errors(nodes)


async def test_a_clean_stop_with_permdown_on_shutdown_is_seen_at_once(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        nodes = Nodes(sim, {**OPTIONS, "permdown_on_shutdown": True})
        for short in "ab":
            await nodes.start(short)
        await trio.sleep(2 * BP)
        ref_a = await nodes.track("a", "alice")
        ref_b = await nodes.track("b", "bob")
        await nodes.wait_listed("ab", {ref_a, ref_b})

        async def stop_presence() -> None:
            await Supervisor.terminate_child("node_sup", ("presence", "pr"))

        t0 = trio.current_time()
        await sim.run("b", stop_presence)
        await nodes.wait_listed("a", {ref_a})
        assert nodes.views["a"].left_at[ref_b] - t0 < 0.1  # not down_period later
        no_errors(nodes)
