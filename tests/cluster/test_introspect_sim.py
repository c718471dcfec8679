"""The introspection service, asked from another node of a simulated cluster."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pytest
import trio
from beamlet.actors import Pid, call, cast, receive, register, send, spawn_link
from beamlet.cluster.introspect import (
    INTROSPECT,
    MAX_LIMIT,
    IntrospectError,
    node_info,
    process_table,
    remote_process_info,
)
from beamlet.cluster.simulation import simulated_cluster

B = "b@b"


async def deaf() -> None:
    await receive(lambda m: m == "never")


async def busy_then_wait(n: int) -> None:
    for _ in range(n):
        send(self_pid_of(), "tick")
        await receive()
    await receive(lambda m: m == "never")


def self_pid_of() -> Pid:
    from beamlet.actors import self_pid

    return self_pid()


async def test_node_info_counts_processes_nodes_and_traffic(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b", "c"]) as sim:
        before = await sim.run("a", node_info, B)
        assert before["name"] == B
        assert before["nodes"] == ["a@a", "c@c"]
        assert before["hidden_nodes"] == []
        assert before["processes"] == len(sim.node("b").processes())
        for _ in range(5):
            sim.spawn("b", deaf)
        await trio.sleep(0.1)
        after = await sim.run("a", node_info, B)
        assert after["processes"] == before["processes"] + 5
        # The answers themselves crossed the connection: bytes went both ways.
        assert after["bytes_in"] > before["bytes_in"] > 0
        assert after["bytes_out"] > before["bytes_out"] > 0


async def test_the_process_table_is_sorted_and_bounded_on_the_node(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        queued = {}
        for n in (3, 50, 7, 20):
            pid = sim.spawn("b", deaf)
            for i in range(n):
                sim.node("b").lookup(pid).deliver(i)  # type: ignore[union-attr]
            queued[pid] = n
        worker = sim.spawn("b", busy_then_wait, 500)
        await trio.sleep(0.1)

        table = await sim.run("a", partial(process_table, B, sort="mailbox", limit=3))
        assert table["total"] == len(sim.node("b").processes())
        rows = table["processes"]
        assert [(r["pid"], r["mailbox"]) for r in rows] == [
            (pid, n) for pid, n in sorted(queued.items(), key=lambda kv: -kv[1])[:3]
        ]
        assert all(r["function"] == deaf.__qualname__ and r["status"] == "waiting" for r in rows)

        [top] = (await sim.run("a", partial(process_table, B, sort="reductions", limit=1)))[
            "processes"
        ]
        assert top["pid"] == worker
        assert top["reductions"] == 501

        by_memory = (await sim.run("a", partial(process_table, B, sort="memory", limit=2)))[
            "processes"
        ]
        assert by_memory[0]["pid"] == max(queued, key=queued.__getitem__)

        by_pid = (await sim.run("a", partial(process_table, B, sort="pid", limit=MAX_LIMIT)))[
            "processes"
        ]
        assert [r["pid"] for r in by_pid] == sorted(sim.node("b").processes())


async def test_process_info_lists_links(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:

        async def linked() -> None:
            register("holder")
            for _ in range(3):
                spawn_link(deaf)
            await receive(lambda m: m == "never")

        pid = sim.spawn("b", linked)
        await trio.sleep(0.1)
        row = await sim.run("a", remote_process_info, pid)
        assert row["name"] == "holder"
        assert len(row["links"]) == 3
        assert all(type(p) is Pid for p in row["links"])

        sim.node("b").lookup(pid).kill("bye")  # type: ignore[union-attr]
        await trio.sleep(0.1)
        with pytest.raises(IntrospectError) as caught:
            await sim.run("a", remote_process_info, pid)
        assert caught.value.reason == "noproc"


async def test_bad_requests_get_an_error_and_the_service_keeps_serving(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        service = sim.node("b").whereis(INTROSPECT)

        async def attack() -> list[Any]:
            answers = []
            for request in [
                "processes",
                ("processes",),
                ("processes", "cpu", 10),
                ("processes", "mailbox", 0),
                ("processes", "mailbox", MAX_LIMIT + 1),
                ("processes", "mailbox", True),
                ("process_info", "not a pid"),
                ("node_info", "extra"),
                ("eval", "__import__('os').system('true')"),
                ("spawn", "os.system", ("true",)),
                10**5000,
            ]:
                answers.append(await call((INTROSPECT, B), request))
            cast((INTROSPECT, B), ("node_info",))
            send((INTROSPECT, B), "stray")
            return answers

        with caplog.at_level(logging.WARNING, logger="beamlet.cluster"):
            answers = await sim.run("a", attack)
            await trio.sleep(1)
        assert len(answers) == 11
        assert all(a[0] == "error" and a[1][0] == "bad_request" for a in answers), answers
        assert sim.node("b").whereis(INTROSPECT) == service
        refused = [r for r in caplog.records if "beamlet_introspect refused" in r.getMessage()]
        assert 1 <= len(refused) <= 3  # rate-limited, not one line per request
        info = await sim.run("a", node_info, B)
        assert info["name"] == B


async def test_the_client_checks_its_arguments_and_names_a_down_node(
    autojump_clock: Any,
) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        with pytest.raises(ValueError, match="sort must be one of"):
            await sim.run("a", partial(process_table, B, sort="cpu"))
        with pytest.raises(ValueError, match="limit must be an int"):
            await sim.run("a", partial(process_table, B, limit=0))
        sim.crash("b")
        await sim.wait_until(lambda: sim.nodes("a") == [])
        with pytest.raises(IntrospectError) as caught:
            await sim.run("a", node_info, B)
        assert caught.value.reason == ("nodedown", B)
        assert "node b@b is down" in str(caught.value)


async def test_a_service_with_many_processes_answers_in_steps(autojump_clock: Any) -> None:
    async with simulated_cluster(["a", "b"]) as sim:
        for _ in range(2500):
            sim.spawn("b", deaf)
        await trio.sleep(0.1)
        table = await sim.run("a", partial(process_table, B, sort="mailbox", limit=5))
        assert table["total"] >= 2500
        assert len(table["processes"]) == 5
