"""Presence for real: three OS processes over loopback TCP, one killed with SIGKILL.

Each node runs ``presence_node_main.py`` (a PubSub and a presence with short
timings), driven over stdin. Presences tracked on every node are listed on
every node; after one node is SIGKILLed, its presences disappear from the
other two, and theirs stay. Every wait is bounded and waits for an answer,
never for a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

NODE_MAIN = Path(__file__).with_name("presence_node_main.py")
COOKIE = "presence-real-cluster-cookie-0123456789"


class Node:
    """A node process: send it commands, read its answers."""

    def __init__(self, process: trio.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.events: list[dict[str, Any]] = []
        self.changed = trio.Event()

    async def read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self.events.append(json.loads(line))
                self.changed.set()
                self.changed = trio.Event()

    async def next(self, event: str, timeout: float = 20) -> dict[str, Any]:
        try:
            with trio.fail_after(timeout):
                while True:
                    for i, e in enumerate(self.events):
                        if e["event"] == event:
                            return self.events.pop(i)
                    await self.changed.wait()
        except trio.TooSlowError:
            raise AssertionError(
                f"no {event}: {self.events}\n{self.stderr.read_text()[-3000:]}"
            ) from None

    async def command(self, **command: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all((json.dumps(command) + "\n").encode())

    async def keys(self) -> list[str]:
        await self.command(cmd="list")
        keys: list[str] = (await self.next("list"))["keys"]
        return keys

    async def wait_keys(self, expected: list[str], timeout: float = 20) -> None:
        with trio.fail_after(timeout):
            while (keys := await self.keys()) != expected:  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert keys == expected


@asynccontextmanager
async def node_processes(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Node] = []
    async with trio.open_nursery() as nursery:

        async def start(name: str, *seeds: str) -> tuple[Node, str]:
            stderr = tmp_path / f"{name.partition('@')[0]}.stderr"
            with stderr.open("wb") as err:
                process = await trio.lowlevel.open_process(
                    [sys.executable, str(NODE_MAIN), name, COOKIE, *seeds],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            node = Node(process, stderr)
            started.append(node)
            nursery.start_soon(node.read)
            ready = await node.next("ready", timeout=30)
            return node, ready["address"]

        try:
            yield start
        finally:
            with trio.CancelScope(shield=True):
                for node in started:
                    if node.process.returncode is None:
                        node.process.kill()
                        await node.process.wait()
            nursery.cancel_scope.cancel()


@pytest.mark.timeout(90)
async def test_a_sigkilled_nodes_presences_disappear_from_the_other_two(tmp_path: Path) -> None:
    async with node_processes(tmp_path) as start:
        a, address = await start("pa@127.0.0.1")
        b, _ = await start("pb@127.0.0.1", address)
        c, _ = await start("pc@127.0.0.1", address)
        for node, prefix in ((a, "a"), (b, "b"), (c, "c")):
            for i in range(2):
                await node.command(cmd="track", key=f"{prefix}{i}")
                await node.next("tracked")
        everyone = ["a0", "a1", "b0", "b1", "c0", "c1"]
        for node in (a, b, c):
            await node.wait_keys(everyone)

        c.process.send_signal(signal.SIGKILL)
        await c.process.wait()
        for node in (a, b):
            await node.wait_keys(["a0", "a1", "b0", "b1"])
