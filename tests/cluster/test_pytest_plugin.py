"""The pytest plugin (entry point ``pytest11``): fixtures for simulated clusters."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from beamlet.actors import Down, monitor, receive, self_pid, send
from beamlet.cluster import NodeDown, monitor_nodes
from beamlet.cluster.simulation import SimulatedCluster


def test_the_plugin_is_registered_once_by_its_entry_point(pytestconfig: pytest.Config) -> None:
    plugins = [
        p
        for p in pytestconfig.pluginmanager.get_plugins()
        if getattr(p, "__name__", "") == "beamlet.cluster.pytest_plugin"
    ]
    assert len(plugins) == 1
    assert pytestconfig.pluginmanager.get_name(plugins[0]) == "beamlet"


async def test_beamlet_cluster_is_a_connected_three_node_cluster(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any
) -> None:
    sim = beamlet_cluster
    assert sim.nodes("a") == ["b@b", "c@c"]
    assert sim.nodes("c") == ["a@a", "b@b"]

    async def pong() -> None:
        sender = await receive()
        send(sender, "pong")

    pid = sim.spawn("c", pong)

    async def ping() -> Any:
        send(pid, self_pid())
        return await receive(timeout=1)

    assert await sim.run("a", ping) == "pong"


@pytest.mark.beamlet_nodes("x", "y")
@pytest.mark.beamlet_options(ticktime=2.0)
async def test_beamlet_cluster_takes_names_and_options_from_markers(
    beamlet_cluster: SimulatedCluster, autojump_clock: Any
) -> None:
    sim = beamlet_cluster
    assert sim.nodes("x") == ["y@y"]
    remote = sim.spawn("y", trio.sleep_forever)

    async def watch() -> list[Any]:
        monitor_nodes(True)
        ref = monitor(remote)
        start = trio.current_time()
        sim.partition({"x"}, {"y"})
        got = [await receive(timeout=10), await receive(timeout=10)]
        return [ref, got, trio.current_time() - start]

    ref, got, elapsed = await sim.run("x", watch)
    assert Down(ref, remote, "noconnection") in got
    assert NodeDown("y@y", "net_tick_timeout") in got
    assert 1.5 <= elapsed <= 2.5  # ticktime 2 s, within T ± T/4


async def test_beamlet_simulation_opens_clusters(
    beamlet_simulation: Any, autojump_clock: Any
) -> None:
    async with beamlet_simulation(["p", "q"]) as sim:
        assert sim.nodes("p") == ["q@q"]
