"""What a flood of introspection requests can cost a node: bounded, and the loop keeps running.

A process table looks at every process of the node; a request for one is a
few bytes. The service spends at most ``TABLE_BUDGET`` of each second on
tables (after a burst of ``TABLE_BURST`` seconds) and answers ``"busy"``
past that, while its cheap requests keep being answered; and it builds a
table a step at a time, whatever the sort, so that the node's other tasks run
meanwhile.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pytest
import trio
from beamlet.actors import spawn
from beamlet.cluster import introspect
from beamlet.cluster.introspect import (
    SORT_KEYS,
    TABLE_BUDGET,
    TABLE_BURST,
    IntrospectError,
    node_info,
    process_table,
)
from beamlet.cluster.simulation import simulated_cluster

B = "b@b"


class FakeClock:
    """Stands for ``time`` in the service: its ``perf_counter`` is what the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


async def test_tables_past_the_time_budget_are_refused_as_busy(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(introspect, "time", clock)
    real = introspect._Introspect._processes

    async def costly(self: Any, sort: str, limit: int) -> dict[str, Any]:
        clock.now += 0.5  # each table takes 0.5 s (binary fractions: exact sums)
        return await real(self, sort, limit)

    monkeypatch.setattr(introspect._Introspect, "_processes", costly)
    async with simulated_cluster(["a", "b"]) as sim:
        table = partial(process_table, B, sort="mailbox", limit=5)
        served = 0
        with caplog.at_level(logging.WARNING, "beamlet.cluster"):
            while True:
                try:
                    await sim.run("a", table)
                except IntrospectError as exc:
                    assert exc.reason == "busy"
                    assert "busy" in str(exc) and "try again" in str(exc)
                    break
                served += 1
                assert served < 10
        # 1.0 s of burst, and 0.125 s back during each table: 1.0, 0.625, 0.25 left
        # before each of the three; -0.125 after them.
        assert (TABLE_BURST, TABLE_BUDGET) == (1.0, 0.25)
        assert served == 3
        busy = [
            r for r in caplog.records if r.name == "beamlet.cluster" and "busy" in r.getMessage()
        ]
        assert len(busy) == 1 and busy[0].getMessage().startswith("beamlet_introspect refused")
        # Cheap requests are still answered.
        assert (await sim.run("a", node_info, B))["name"] == B
        # The budget comes back at TABLE_BUDGET a second.
        clock.now += 0.5 / TABLE_BUDGET  # 0.375 s: one table
        await sim.run("a", table)
        with pytest.raises(IntrospectError):
            await sim.run("a", table)
        clock.now += 10 * TABLE_BURST / TABLE_BUDGET  # never more than the burst
        for _ in range(3):
            await sim.run("a", table)
        with pytest.raises(IntrospectError):
            await sim.run("a", table)


@pytest.mark.parametrize("sort", SORT_KEYS)
async def test_a_table_of_many_processes_is_built_a_step_at_a_time(
    autojump_clock: Any, sort: str
) -> None:
    async with simulated_cluster(["a"]) as sim:

        async def scenario() -> tuple[int, dict[str, Any]]:
            for _ in range(5 * introspect._STEP):
                spawn(trio.sleep_forever)
            ticks = 0
            done = False

            async def ticker() -> None:
                nonlocal ticks
                while not done:
                    await trio.lowlevel.checkpoint()
                    ticks += 1

            service = introspect._Introspect()
            await service.init()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                await trio.lowlevel.checkpoint()  # the ticker is waiting to run
                before = ticks
                table = await service._processes(sort, 3)
                during = ticks - before
                done = True
            return during, table

        during, table = await sim.run("a", scenario)
        assert table["total"] > 5 * introspect._STEP
        assert len(table["processes"]) == 3
        assert during >= 4  # the other tasks ran between the steps
