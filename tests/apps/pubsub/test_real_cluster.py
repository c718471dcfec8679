"""PubSub for real: the chat example (docs/examples/pubsub_chat.py) as separate OS
processes over loopback TCP, two of them, then three with one SIGKILLed.

Every wait is bounded and waits for a line; a line that may be said before the
nodes' shards know each other is said again until it is heard (at most once:
a broadcast before the mesh settles may be lost, which is the point).
"""

from __future__ import annotations

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

CHAT = Path(__file__).resolve().parents[3] / "docs" / "examples" / "pubsub_chat.py"


class ChatNode:
    def __init__(self, name: str, process: trio.Process, stderr: Path) -> None:
        self.name = name
        self.process = process
        self.stderr = stderr
        self.lines: list[str] = []
        self._changed = trio.Event()
        self.address = ""

    async def read_lines(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self.lines.append(line.decode())
                self._changed.set()
                self._changed = trio.Event()

    async def type(self, text: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all((text + "\n").encode())

    async def expect(self, match: Callable[[str], bool], timeout: float = 15) -> str:
        with trio.move_on_after(timeout):
            while True:
                for line in self.lines:
                    if match(line):
                        return line
                await self._changed.wait()
        raise AssertionError(
            f"{self.name} did not print it; it printed {self.lines}\n"
            f"stderr: {self.stderr.read_text()[-3000:]}"
        )

    def heard(self, text: str) -> bool:
        return any(line.endswith(f"> {text}") for line in self.lines)


async def say_until_heard(speaker: ChatNode, text: str, *listeners: ChatNode) -> None:
    with trio.fail_after(20):
        while not all(node.heard(text) for node in listeners):
            await speaker.type(text)
            with trio.move_on_after(0.3):
                for node in listeners:
                    await node.expect(lambda line: line.endswith(f"> {text}"))


@asynccontextmanager
async def chat_nodes(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[ChatNode] = []
    async with trio.open_nursery() as nursery:

        async def start(name: str, *seeds: str) -> ChatNode:
            stderr = tmp_path / f"{name.partition('@')[0]}.stderr"
            args = [sys.executable, str(CHAT), name]
            for seed in seeds:
                args += ["--seed", seed]
            with stderr.open("wb") as err:
                process = await trio.lowlevel.open_process(
                    args,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            node = ChatNode(name, process, stderr)
            started.append(node)
            nursery.start_soon(node.read_lines)
            ready = await node.expect(lambda line: line.startswith("ready "), timeout=20)
            node.address = ready.split()[2]
            return node

        try:
            yield start
        finally:
            with trio.CancelScope(shield=True):
                for node in started:
                    if node.process.returncode is None:
                        node.process.kill()
                for node in started:
                    with trio.move_on_after(5):
                        await node.process.wait()
            nursery.cancel_scope.cancel()


async def quit_all(*nodes: ChatNode) -> None:
    for node in nodes:
        await node.type("/quit")
    for node in nodes:
        with trio.fail_after(10):
            assert await node.process.wait() == 0, node.stderr.read_text()[-3000:]


@pytest.mark.timeout(90)
async def test_the_chat_example_across_two_os_processes(tmp_path: Path) -> None:
    async with chat_nodes(tmp_path) as start:
        alice = await start("alice@127.0.0.1")
        bob = await start("bob@127.0.0.1", alice.address)
        await say_until_heard(bob, "hello alice", alice)
        await say_until_heard(alice, "hi bob", bob)
        assert not alice.heard("hi bob") and not bob.heard("hello alice")  # not to oneself
        await quit_all(alice, bob)
        assert alice.lines[-1] == "bye from alice@127.0.0.1"


@pytest.mark.timeout(120)
async def test_three_os_processes_one_sigkilled(tmp_path: Path) -> None:
    async with chat_nodes(tmp_path) as start:
        n1 = await start("n1@127.0.0.1")
        n2 = await start("n2@127.0.0.1", n1.address)
        n3 = await start("n3@127.0.0.1", n1.address)
        await say_until_heard(n1, "ping", n2, n3)
        await say_until_heard(n3, "from n3", n1, n2)

        n3.process.send_signal(signal.SIGKILL)
        # At once, before n1 notices: the broadcast returns and n2 gets it.
        await n1.type("after the kill")
        await n2.expect(lambda line: line == "<n1@127.0.0.1> after the kill")
        # Once n1 has noticed, the survivors still talk both ways.
        with trio.fail_after(60):
            while True:
                await n1.type("/who")
                line = await n1.expect(lambda line: line.startswith("nodes: "))
                n1.lines.remove(line)
                if line == "nodes: n1@127.0.0.1 n2@127.0.0.1":
                    break
                await trio.sleep(0.5)
        await n2.type("still here")
        await n1.expect(lambda line: line == "<n2@127.0.0.1> still here")
        assert n1.process.returncode is None and n2.process.returncode is None
        await quit_all(n1, n2)
