"""Testing a distributed app in the simulation: a pytest file, as in your own tests/."""

from typing import Any

import pytest
import trio
from beamlet.actors import GenServer, Pid, call, receive
from beamlet.cluster import NodeDown, monitor_nodes, pg
from beamlet.cluster.simulation import SimulatedCluster

# Tests of beamlet code are Trio tests: mark them (or set trio_mode = true).
pytestmark = pytest.mark.trio


class Inventory(GenServer):
    """The app under test: one inventory per node, each in the pg group "inventory"."""

    async def init(self) -> None:
        self.stock: dict[str, int] = {}
        await pg.join("inventory")

    async def handle_call(self, request: Any, caller: Any) -> int:
        op, item = request
        if op == "add":
            self.stock[item] = self.stock.get(item, 0) + 1
        return self.stock.get(item, 0)


async def start_inventory() -> Pid:
    return await Inventory.start(name="inventory")


async def inventory_nodes() -> list[str]:
    return sorted(pid.node for pid in pg.members("inventory"))


async def until(sim: SimulatedCluster, short: str, expected: list[str]) -> None:
    """Wait (in virtual time) until node ``short`` sees inventories on ``expected``."""
    with trio.fail_after(30):
        while await sim.run(short, inventory_nodes) != expected:  # noqa: ASYNC110 (polls)
            await trio.sleep(0.1)


async def test_inventories_are_called_and_found_across_nodes(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any
) -> None:
    sim = beamlet_cluster  # three nodes, a@a, b@b and c@c, connected
    for short in ("a", "b", "c"):
        await sim.run(short, start_inventory)
    await until(sim, "a", ["a@a", "b@b", "c@c"])

    async def add_on_b() -> int:
        return await call(("inventory", "b@b"), ("add", "apple"))

    assert await sim.run("a", add_on_b) == 1
    assert await sim.run("c", add_on_b) == 2


async def test_a_partition_is_noticed_after_the_ticktime_and_heals(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any
) -> None:
    sim = beamlet_cluster
    for short in ("a", "b", "c"):
        await sim.run(short, start_inventory)
    await until(sim, "a", ["a@a", "b@b", "c@c"])

    async def watch() -> tuple[list[str], float]:
        monitor_nodes(True)
        started = trio.current_time()
        sim.partition({"a"}, {"b", "c"})
        downs = [await receive(lambda m: isinstance(m, NodeDown)) for _ in range(2)]
        return sorted(d.node for d in downs), trio.current_time() - started

    down, after = await sim.run("a", watch)
    assert down == ["b@b", "c@c"]
    assert 3.0 <= after <= 5.0  # the simulation's ticktime is 4 s (a peer is down at 0.75-1.25x)
    await until(sim, "a", ["a@a"])
    await until(sim, "b", ["b@b", "c@c"])

    sim.heal()
    await sim.wait_connected()  # the nodes reconnect through their seeds
    await until(sim, "a", ["a@a", "b@b", "c@c"])


async def test_a_crashed_node_restarts_as_a_new_incarnation(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any
) -> None:
    sim = beamlet_cluster
    old = await sim.run("b", start_inventory)
    sim.crash("b")  # as SIGKILL: its peers see the connection close
    await sim.wait_until(lambda: "b@b" not in sim.nodes("a"))
    await sim.restart("b")
    await sim.wait_connected()
    new = await sim.run("b", start_inventory)
    assert new.node == old.node and new.creation != old.creation
    await until(sim, "a", ["b@b"])


@pytest.mark.beamlet_nodes("x", "y")
@pytest.mark.beamlet_options(ticktime=1.0)
async def test_markers_choose_the_nodes_and_their_options(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any
) -> None:
    sim = beamlet_cluster
    assert sim.nodes("x") == ["y@y"]
    sim.partition({"x"}, {"y"})
    started = trio.current_time()
    await sim.wait_until(lambda: sim.nodes("x") == [])
    assert trio.current_time() - started <= 1.25  # ticktime 1 s here


async def test_clusters_opened_in_the_test(beamlet_simulation: Any, autojump_clock: Any) -> None:
    # "r" knows only "p" as a seed; it finds "q" through p (gossip).
    async with beamlet_simulation(["p", "q", "r"], seeds={"r": ["p"]}) as sim:
        assert sim.nodes("r") == ["p@p", "q@q"]
        sim.delay(0.5, "p", "q")  # bytes between p and q now take half a second
        await sim.add("s", seeds=["q"])
        await sim.wait_connected()
        assert sim.nodes("s") == ["p@p", "q@q", "r@r"]
