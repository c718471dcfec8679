"""Two OS-process nodes that are not connected to each other, talking through a real Redis.

Neither node is distributed (no listener, no beamlet connection): each runs
``redis_node.py``, a PubSub with the Redis adapter. Redis is killed and
restarted mid-run, then one node is SIGKILLed. Every wait is bounded and
waits for a line from a node, never for a fixed time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from os_nodes import OSNode, OSNodes, os_nodes
from redis_server import RedisServer

REDIS_NODE = Path(__file__).with_name("redis_node.py")
WAIT = 15.0


class Child:
    """One node: JSON commands in, JSON events out."""

    def __init__(self, node: OSNode) -> None:
        self.node = node
        self.name = node.name
        self.process = node.process

    @property
    def got(self) -> list[Any]:
        """The messages the node has reported receiving, in order."""
        return [event["msg"] for event in self.node.lines if event["event"] == "got"]

    async def send(self, **command: Any) -> None:
        await self.node.command(**command)

    async def until_got(self, message: Any) -> list[Any]:
        """Wait for ``message`` to arrive; everything received until it, it included."""
        got = await self.node.expect(lambda e: e == {"event": "got", "msg": message}, WAIT)
        upto = next(i for i, event in enumerate(self.node.lines) if event is got)
        return [event["msg"] for event in self.node.lines[: upto + 1] if event["event"] == "got"]

    async def stats(self) -> dict[str, int]:
        await self.send(cmd="stats")
        event = await self.node.expect(lambda e: e["event"] == "stats", WAIT)
        return dict(event["stats"])

    async def until_stats(self, what: str, predicate: Any) -> dict[str, int]:
        with trio.fail_after(WAIT):
            while True:
                stats = await self.stats()
                if predicate(stats):
                    return stats
                await trio.sleep(0.02)


async def start(nodes: OSNodes, name: str, redis: RedisServer) -> Child:
    node = await nodes.start(name, REDIS_NODE, name, redis.url)
    assert (await node.expect(lambda e: True, WAIT))["event"] == "ready"  # its first line
    return Child(node)


async def test_two_unconnected_os_process_nodes_through_redis(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with os_nodes(tmp_path) as nodes:
        a = await start(nodes, "node-a", redis_server)
        b = await start(nodes, "node-b", redis_server)

        # A broadcast from a reaches b once, and a's own subscriber once.
        for i in range(50):
            await a.send(cmd="broadcast", msg=["hello", i])
        assert await b.until_got(["hello", 49]) == [["hello", i] for i in range(50)]
        await b.send(cmd="broadcast", msg=["from b", 0])
        # Redis orders the channel: a's echoes of its own 50 came before b's message.
        assert await a.until_got(["from b", 0]) == [
            *(["hello", i] for i in range(50)),
            ["from b", 0],
        ]

        # direct_broadcast by node_name: only node-a gets it.
        await b.send(cmd="direct", node="node-a", msg=["direct", 1])
        await b.send(cmd="broadcast", msg=["mark", 1])
        assert (await a.until_got(["mark", 1]))[-2:] == [["direct", 1], ["mark", 1]]
        assert (await b.until_got(["mark", 1]))[-1:] == [["mark", 1]]
        assert ["direct", 1] not in b.got

        # Redis killed: broadcasts are counted as not published; b gets none of them.
        redis_server.kill()
        await a.until_stats("a sees Redis down", lambda s: s["redis_up"] == 0)
        await a.send(cmd="broadcast", msg=["lost", 1])
        await a.until_got(["lost", 1])  # a's own subscriber still gets it
        assert (await a.stats())["redis_send_drops"] == 1

        # Redis back: both resubscribe and talk again.
        await redis_server.restart_async()
        for child in (a, b):
            await child.until_stats(
                "resubscribed", lambda s: s["redis_up"] == 1 and s["redis_resubscriptions"] == 1
            )
        await a.send(cmd="broadcast", msg=["back", 1])
        got = await b.until_got(["back", 1])
        assert ["lost", 1] not in got

        # b is SIGKILLed: a keeps serving (its broadcast reaches its own subscriber).
        b.node.kill()
        with trio.fail_after(WAIT):
            await b.process.wait()
        await a.send(cmd="broadcast", msg=["alone", 1])
        await a.until_got(["alone", 1])
        stats = await a.stats()
        assert stats["redis_up"] == 1 and stats["bad_input"] == 0
        await a.send(cmd="quit")
        with trio.fail_after(WAIT):
            assert await a.process.wait() == 0
