"""PubSub for real: the chat example (docs/examples/pubsub_chat.py) as separate OS
processes over loopback TCP, two of them, then three with one SIGKILLed.

Every wait is bounded and waits for a line; a line that may be said before the
nodes' shards know each other is said again until it is heard (at most once:
a broadcast before the mesh settles may be lost, which is the point).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from os_nodes import OSNode, os_nodes, parse_text

CHAT = Path(__file__).resolve().parents[3] / "docs" / "examples" / "pubsub_chat.py"


def heard(node: OSNode, text: str) -> bool:
    return any(line.endswith(f"> {text}") for line in node.lines)


async def say_until_heard(speaker: OSNode, text: str, *listeners: OSNode) -> None:
    with trio.fail_after(20):
        while not all(heard(node, text) for node in listeners):
            await speaker.write(text)
            with trio.move_on_after(0.3):
                for node in listeners:
                    await node.expect(lambda line: line.endswith(f"> {text}"))


@asynccontextmanager
async def chat_nodes(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[OSNode]]]:
    """Start chat nodes (``start(name, *seeds)``); all stopped on exit."""
    async with os_nodes(tmp_path) as nodes:

        async def start(name: str, *seeds: str) -> OSNode:
            args = [name]
            for seed in seeds:
                args += ["--seed", seed]
            node = await nodes.start(
                name,
                CHAT,
                *args,
                parse=parse_text,
                ready=lambda line: line.startswith("ready "),
            )
            node.address = node.ready.split()[2]
            return node

        yield start


async def quit_all(*nodes: OSNode) -> None:
    for node in nodes:
        await node.write("/quit")
    for node in nodes:
        assert await node.exited() == 0, node.stderr_tail()


@pytest.mark.timeout(90)
async def test_the_chat_example_across_two_os_processes(tmp_path: Path) -> None:
    async with chat_nodes(tmp_path) as start:
        alice = await start("alice@127.0.0.1")
        bob = await start("bob@127.0.0.1", alice.address)
        await say_until_heard(bob, "hello alice", alice)
        await say_until_heard(alice, "hi bob", bob)
        assert not heard(alice, "hi bob") and not heard(bob, "hello alice")  # not to oneself
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

        n3.kill()
        # At once, before n1 notices: the broadcast returns and n2 gets it.
        await n1.write("after the kill")
        await n2.expect(lambda line: line == "<n1@127.0.0.1> after the kill")
        # Once n1 has noticed, the survivors still talk both ways.
        with trio.fail_after(60):
            while True:
                await n1.write("/who")
                line = await n1.expect(lambda line: line.startswith("nodes: "))
                if line == "nodes: n1@127.0.0.1 n2@127.0.0.1":
                    break
                await trio.sleep(0.5)
        await n2.write("still here")
        await n1.expect(lambda line: line == "<n2@127.0.0.1> still here")
        assert n1.process.returncode is None and n2.process.returncode is None
        await quit_all(n1, n2)
