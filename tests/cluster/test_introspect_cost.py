"""What a flood of introspection requests can cost a node: bounded, and the loop keeps running.

A process table looks at every process of the node; a request for one is a
few bytes. The service spends at most ``NODE_TABLE_BUDGET`` of each second on
one node's tables and ``TABLE_BUDGET`` on all (after bursts of
``NODE_TABLE_BURST`` and ``TABLE_BURST`` seconds) and answers ``"busy"``
past that, while its cheap requests keep being answered; a table is charged
the time of its own steps, not the work the node ran between them; and it
builds a table a step at a time, whatever the sort, so that the node's other
tasks run meanwhile.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pytest
import trio
from beamlet.actors import From, spawn
from beamlet.actors.lowlevel import current_node
from beamlet.cluster import introspect
from beamlet.cluster.introspect import (
    NODE_TABLE_BUDGET,
    NODE_TABLE_BURST,
    SORT_KEYS,
    TABLE_BUDGET,
    TABLE_BURST,
    IntrospectError,
    node_info,
    process_table,
)
from beamlet.cluster.simulation import simulated_cluster
from trio.testing import MockClock

B = "b@b"


A = "a@a"


async def test_a_table_is_charged_its_own_steps_not_the_work_run_between_them(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each process the table looks at takes 2**-12 s of the service's own time
    # (binary fractions: exact sums); at each checkpoint between two steps,
    # another task of the node works for a whole second.
    clock = autojump_clock
    real_info = introspect.process_info

    def costly_info(pid: Any) -> Any:
        clock.jump(2**-12)
        return real_info(pid)

    async with simulated_cluster(["a", "b"]) as sim:

        async def scenario() -> tuple[float, float, int, int, tuple[float, float]]:
            for _ in range(3 * introspect._STEP):
                spawn(trio.sleep_forever)
            service = introspect._Introspect()
            await service.init()
            busy_work = 0
            working = False

            async def other_work() -> None:
                nonlocal busy_work
                while True:
                    await trio.lowlevel.checkpoint()
                    if working:
                        clock.jump(1.0)
                        busy_work += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(other_work)
                await trio.lowlevel.checkpoint()
                monkeypatch.setattr(introspect, "process_info", costly_info)
                requester = From(sim.node("a").spawn(trio.sleep_forever), current_node().make_ref())
                start = trio.current_time()
                working = True
                status, table = await service.handle_call(("processes", "mailbox", 5), requester)
                working = False
                end = trio.current_time()
                monkeypatch.setattr(introspect, "process_info", real_info)
                nursery.cancel_scope.cancel()
            assert status == "ok"
            return start, end, table["total"], busy_work, service.budget.available(A, start)

        start, end, total, busy_work, left = await sim.run("b", scenario)
        own = total * 2**-12  # one process_info per process of the node
        assert total > 3 * introspect._STEP and busy_work >= 2
        assert end - start == own + busy_work  # the wall time: its steps and the others' work
        # Charged its own steps only, to the requesting node and to the total.
        assert left == (NODE_TABLE_BURST - own, TABLE_BURST - own)


async def test_a_flooding_node_gets_busy_while_others_are_answered(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = autojump_clock
    real = introspect._Introspect._processes

    async def costly(self: Any, sort: str, limit: int) -> dict[str, Any]:
        clock.jump(1.0)  # each table takes 1 s of the service's own steps
        return await real(self, sort, limit)

    monkeypatch.setattr(introspect._Introspect, "_processes", costly)
    assert (NODE_TABLE_BUDGET, NODE_TABLE_BURST, TABLE_BUDGET, TABLE_BURST) == (
        0.125,
        1.0,
        0.25,
        2.0,
    )
    async with simulated_cluster(["a", "b", "c", "d"]) as sim:
        table = partial(process_table, B, sort="mailbox", limit=5)
        for short in ("a", "c", "d"):  # connected first: then no time passes but the tables'
            await sim.run(short, node_info, B)
        begin = trio.current_time()

        async def flood() -> int:
            served = 0
            while True:
                try:
                    await table()
                except IntrospectError as exc:
                    assert exc.reason == "busy", exc
                    assert "busy" in str(exc) and "try again" in str(exc)
                    return served
                served += 1
                assert served < 10

        with caplog.at_level(logging.WARNING, "beamlet.cluster"):
            # The buckets refill while tables are built (by 0.125 s and 0.25 s
            # a second). a: 1.0 s of burst, 0 after one table, 0.125 at the
            # second, -0.875 after it; the total: 2.0, 1.0, 1.25, 0.25.
            assert await sim.run("a", flood) == 2
        busy = [
            r for r in caplog.records if r.name == "beamlet.cluster" and "busy" in r.getMessage()
        ]
        assert len(busy) == 1
        assert busy[0].getMessage().startswith("beamlet_introspect refused")
        assert "asked by a@a" in busy[0].getMessage()
        # Another node is still answered (its own budget, and the total's 0.5 s
        # after a's refusal)...
        assert len((await sim.run("c", table))["processes"]) == 5
        # ... until the total is spent (-0.5 s, then -0.25 s): then every node is refused.
        for short in ("a", "c", "d"):
            with pytest.raises(IntrospectError):
                await sim.run(short, table)
        # Cheap requests are still answered.
        assert (await sim.run("a", node_info, B))["name"] == B
        assert trio.current_time() - begin == 3.0  # the three tables' own time
        # Six seconds later: a has 0.75 s more (0.125 s), the total 1.5 s more
        # (1.25 s). a floods again and gets one table; the rest is the others'.
        await trio.sleep(6.0)
        assert await sim.run("a", flood) == 1
        await sim.run("c", table)
        with pytest.raises(IntrospectError):
            await sim.run("d", table)
        # Never more than the bursts, however long it waited.
        await trio.sleep(100.0)
        assert await sim.run("a", flood) == 2
        assert await sim.run("c", flood) == 1  # the total's 2.0 s: 0.5 left for c
        assert trio.current_time() - begin == 3.0 + 6.0 + 2.0 + 100.0 + 3.0


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
