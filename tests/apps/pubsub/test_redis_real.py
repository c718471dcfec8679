"""Two OS-process nodes that are not connected to each other, talking through a real Redis.

Neither node is distributed (no listener, no beamlet connection): each runs
``redis_node.py``, a PubSub with the Redis adapter. Redis is killed and
restarted mid-run, then one node is SIGKILLed. Every wait is bounded and
waits for a line from a node, never for a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
from redis_server import RedisServer

REDIS_NODE = Path(__file__).with_name("redis_node.py")
WAIT = 15.0


class Child:
    """One node: JSON commands in, JSON events out."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.buffer = b""
        self.got: list[Any] = []

    async def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(json.dumps(command).encode() + b"\n")

    async def event(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise AssertionError(f"{self.name} exited: {self.process.returncode}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        event: dict[str, Any] = json.loads(line)
        if event["event"] == "got":
            self.got.append(event["msg"])
        return event

    async def until_got(self, message: Any) -> list[Any]:
        """Read events until ``message`` arrives; everything received so far."""
        with trio.fail_after(WAIT):
            while message not in self.got:
                await self.event()
        return self.got

    async def stats(self) -> dict[str, int]:
        await self.send(cmd="stats")
        with trio.fail_after(WAIT):
            while True:
                event = await self.event()
                if event["event"] == "stats":
                    return dict(event["stats"])

    async def until_stats(self, what: str, predicate: Any) -> dict[str, int]:
        with trio.fail_after(WAIT):
            while True:
                stats = await self.stats()
                if predicate(stats):
                    return stats
                await trio.sleep(0.02)


async def start(name: str, redis: RedisServer, stderr: Any) -> Child:
    process = await trio.lowlevel.open_process(
        [sys.executable, str(REDIS_NODE), name, redis.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    child = Child(name, process)
    with trio.fail_after(WAIT):
        assert (await child.event())["event"] == "ready"
    return child


async def test_two_unconnected_os_process_nodes_through_redis(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    stderr = (tmp_path / "nodes.stderr").open("wb")
    a = b = None
    try:
        a = await start("node-a", redis_server, stderr)
        b = await start("node-b", redis_server, stderr)

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
        b.process.send_signal(signal.SIGKILL)
        with trio.fail_after(WAIT):
            await b.process.wait()
        await a.send(cmd="broadcast", msg=["alone", 1])
        await a.until_got(["alone", 1])
        stats = await a.stats()
        assert stats["redis_up"] == 1 and stats["bad_input"] == 0
        await a.send(cmd="quit")
        with trio.fail_after(WAIT):
            assert await a.process.wait() == 0
    finally:
        for child in (a, b):
            if child is not None and child.process.returncode is None:
                child.process.kill()
                await child.process.wait()
        stderr.close()
