"""The kernel: rpc, pg and discovery under a supervisor, restarted when they die.

Every test runs in the simulation under ``MockClock(autojump_threshold=0)``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
import trio
from beamlet.actors import (
    Down,
    Pid,
    monitor,
    receive,
    send_exit,
    whereis,
)
from beamlet.cluster import DNSPoll, RpcError, export, pg, rpc
from beamlet.cluster.simulation import SimulatedCluster, simulated_cluster
from beamlet.supervisors import Supervisor

A, B = "a@a", "b@b"
SERVICES = ["beamlet_rpc", "beamlet_pg_default", "beamlet_discovery", "beamlet_introspect"]


@export(name="tests.kernel.double")
def double(x: int) -> int:
    return 2 * x


async def member(*groups: Any) -> None:
    for group in groups:
        await pg.join(group)
    await trio.sleep_forever()


async def kill(sim: SimulatedCluster, short: str, name: str, reason: Any) -> Pid:
    """Kill the service ``name`` on ``short`` with ``reason``; return its new pid."""

    async def body() -> Pid:
        old = whereis(name)
        assert old is not None
        ref = monitor(old)
        send_exit(old, reason)
        down = await receive(lambda m: isinstance(m, Down) and m.ref == ref)
        assert down.reason == ("killed" if reason == "kill" else reason)
        with trio.fail_after(5):
            while (new := whereis(name)) in (None, old):  # noqa: ASYNC110
                await trio.sleep(0.01)
        return new

    new: Pid = await sim.run(short, body)
    return new


async def group_members(sim: SimulatedCluster, short: str, group: Any) -> Counter[Pid] | None:
    async def read() -> Counter[Pid] | None:
        try:
            return Counter(pg.members(group))
        except pg.ScopeNotStartedError:
            return None

    result: Counter[Pid] | None = await sim.run(short, read)
    return result


async def wait_members(
    sim: SimulatedCluster, group: Any, expected: Counter[Pid], shorts: str
) -> None:
    with trio.fail_after(10):
        while True:
            seen = [await group_members(sim, s, group) for s in shorts]
            if seen == [expected] * len(shorts):
                return
            await trio.sleep(0.05)


async def test_the_kernel_supervises_the_system_services(autojump_clock: Any) -> None:
    async with simulated_cluster(["a"], connect=False) as sim:

        async def tree() -> list[Any]:
            sup = whereis("beamlet_kernel_sup")
            assert sup is not None
            return [(info.id, info.pid, info.type) for info in await Supervisor.which_children(sup)]

        children = await sim.run("a", tree)
        node = sim.node("a")
        assert [(id, type) for id, _pid, type in children] == [
            ("rpc", "worker"),
            (("pg", "default"), "worker"),
            ("discovery", "worker"),
            ("introspect", "worker"),
        ]
        assert [pid for _id, pid, _type in children] == [node.whereis(n) for n in SERVICES]


@pytest.mark.parametrize("reason", ["kill", "boom"])
async def test_a_killed_rpc_server_comes_back_and_serves(autojump_clock: Any, reason: str) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        old = sim.node("b").whereis("beamlet_rpc")
        new = await kill(sim, "b", "beamlet_rpc", reason)
        assert new != old

        async def use() -> Any:
            return await rpc(B, "tests.kernel.double", 21)

        async def refused() -> Any:
            with pytest.raises(RpcError) as info:
                await rpc(B, "os.system", "true")
            return info.value.reason

        assert await sim.run("a", use) == 42
        # and it still refuses what is not exported
        assert await sim.run("a", refused) == ("not_exported", "os.system")


@pytest.mark.parametrize("reason", ["kill", "boom"])
async def test_a_killed_pg_scope_comes_back_and_other_nodes_members_recover(
    autojump_clock: Any, reason: str
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        pa = sim.spawn("a", member, "g")
        pb = sim.spawn("b", member, "g")
        await wait_members(sim, "g", Counter([pa, pb]), "ab")

        await kill(sim, "b", "beamlet_pg_default", reason)
        # b's restarted scope learns a's members again from a; b's own member
        # was forgotten with the old scope's table (as in Erlang), on b and on a.
        await wait_members(sim, "g", Counter([pa]), "ab")
        assert sim.node("b").process_info(pb) is not None  # not killed, just forgotten

        # The new scope serves: a member joins again and everyone sees it.
        pb2 = sim.spawn("b", member, "g")
        await wait_members(sim, "g", Counter([pa, pb2]), "ab")
        # A node whose scope restarted keeps hearing of the others' changes.
        pa2 = sim.spawn("a", member, "g")
        await wait_members(sim, "g", Counter([pa, pa2, pb2]), "ab")


async def test_a_killed_discovery_process_comes_back_and_keeps_polling(
    autojump_clock: Any,
) -> None:
    polls: list[float] = []

    async def resolver(query: str) -> list[str]:
        polls.append(trio.current_time())
        return []

    dns = DNSPoll("cluster.internal", 4370, interval=5.0, resolver=resolver)
    async with simulated_cluster(["a"], connect=False, discovery=[dns]) as sim:
        await trio.sleep(11)
        assert len(polls) == 3  # at 0, 5 and 10
        killed_at = trio.current_time()
        await kill(sim, "a", "beamlet_discovery", "kill")
        await trio.sleep(11)
        assert [t for t in polls if t >= killed_at][:1] == [killed_at]  # polls at once again
        assert len([t for t in polls if t >= killed_at]) == 3


async def test_a_discovery_strategy_that_raises_is_restarted(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[float] = []

    class Flaky:
        async def run(self, dist: Any) -> None:
            runs.append(trio.current_time())
            await trio.sleep(1)
            raise RuntimeError("strategy failure")

    async with simulated_cluster(["a", "b"], discovery=[Flaky()], seed_interval=1.0) as sim:
        await trio.sleep(3.5)
        assert len(runs) >= 3  # restarted after each failure
        assert sim.running() == ["a", "b"]

        async def use() -> Any:
            return await rpc(B, "tests.kernel.double", 1)

        assert await sim.run("a", use) == 2
    assert any("strategy failure" in r.getMessage() for r in caplog.records)


async def test_the_node_shuts_down_when_the_kernel_gives_up(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        with caplog.at_level(logging.CRITICAL, logger="beamlet.cluster"):
            for _ in range(10):
                await kill(sim, "b", "beamlet_rpc", "kill")

            async def last_straw() -> None:
                send_exit(whereis("beamlet_rpc"), "kill")  # type: ignore[arg-type]

            await sim.run("b", last_straw)
            await sim.wait_until(lambda: sim.running() == ["a"])
        [record] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
        assert "kernel of b@b exited" in record.getMessage()
        await sim.wait_until(lambda: sim.nodes("a") == [])


async def test_a_peer_that_floods_a_service_with_exit_signals_does_not_stop_the_kernel_within_its_intensity(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        for _ in range(3):
            for name in SERVICES:
                await kill(sim, "b", name, "kill")
            await trio.sleep(30)  # spread over more than the kernel's window

        async def use() -> Any:
            return await rpc(B, "tests.kernel.double", 5)

        assert await sim.run("a", use) == 10
        assert sim.running() == ["a", "b"]
