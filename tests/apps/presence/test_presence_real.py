"""Presence for real: three OS processes over loopback TCP, one killed with SIGKILL.

Each node runs ``presence_node_main.py`` (a PubSub and a presence with short
timings), driven over stdin. Presences tracked on every node are listed on
every node; after one node is SIGKILLed, its presences disappear from the
other two, and theirs stay. Every wait is bounded and waits for an answer,
never for a fixed time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from os_nodes import OSNode, OSNodes, os_nodes

NODE_MAIN = Path(__file__).with_name("presence_node_main.py")
COOKIE = "presence-real-cluster-cookie-0123456789"


async def start(nodes: OSNodes, name: str, *seeds: str) -> OSNode:
    return await nodes.start_node(NODE_MAIN, name, COOKIE, *seeds, ready_timeout=30)


async def answer(node: OSNode, event: str, timeout: float = 20) -> dict[str, Any]:
    """The node's first ``event`` line not yet taken."""
    line: dict[str, Any] = await node.expect(lambda e: e["event"] == event, timeout)
    return line


async def keys(node: OSNode) -> list[str]:
    await node.command(cmd="list")
    listed: list[str] = (await answer(node, "list"))["keys"]
    return listed


async def wait_keys(node: OSNode, expected: list[str], timeout: float = 20) -> None:
    with trio.fail_after(timeout):
        while (listed := await keys(node)) != expected:  # noqa: ASYNC110
            await trio.sleep(0.05)
    assert listed == expected


@pytest.mark.timeout(90)
async def test_a_sigkilled_nodes_presences_disappear_from_the_other_two(tmp_path: Path) -> None:
    async with os_nodes(tmp_path) as nodes:
        a = await start(nodes, "pa@127.0.0.1")
        b = await start(nodes, "pb@127.0.0.1", a.address)
        c = await start(nodes, "pc@127.0.0.1", a.address)
        for node, prefix in ((a, "a"), (b, "b"), (c, "c")):
            for i in range(2):
                await node.command(cmd="track", key=f"{prefix}{i}")
                await answer(node, "tracked")
        everyone = ["a0", "a1", "b0", "b1", "c0", "c1"]
        for node in (a, b, c):
            await wait_keys(node, everyone)

        c.kill()
        await c.exited()
        for node in (a, b):
            await wait_keys(node, ["a0", "a1", "b0", "b1"])


@pytest.mark.timeout(90)
async def test_a_node_joining_an_idle_cluster_lists_its_presences_at_once(
    tmp_path: Path,
) -> None:
    """An idle shard heartbeats only every 12.2 s here; a node that joins, with
    nothing tracked, still lists a's presence within a few periods (it is
    greeted when it connects and when it is first heard), not at a's next
    idle heartbeat."""
    idle = {"PRESENCE_IDLE": "1"}
    async with os_nodes(tmp_path) as nodes:
        a = await nodes.start_node(NODE_MAIN, "pa@127.0.0.1", COOKIE, env=idle, ready_timeout=30)
        await a.command(cmd="track", key="a0")
        await answer(a, "tracked")
        await wait_keys(a, ["a0"])
        b = await nodes.start_node(
            NODE_MAIN, "pb@127.0.0.1", COOKIE, a.address, env=idle, ready_timeout=30
        )
        # Well under the 12.2 s between a's idle heartbeats.
        await wait_keys(b, ["a0"], timeout=6)
        await b.command(cmd="track", key="b0")
        await answer(b, "tracked")
        for node in (a, b):
            await wait_keys(node, ["a0", "b0"], timeout=6)
