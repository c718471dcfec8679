"""Cluster invalidation for real: this process and a node in another OS process, over
loopback TCP; then the other node is killed with SIGKILL. Every wait is bounded and
waits for a message, never for a fixed time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from beamlet.actors import call, receive, self_pid
from beamlet.apps.cache import Cache, Invalidate, lookup
from beamlet.apps.pubsub import PubSub, subscribe
from beamlet.cluster import NodeDown, NodeUp, listen_address, monitor_nodes, open_node
from os_nodes import OSNode, os_nodes, parse_text

CACHE_NODE = Path(__file__).with_name("cache_node.py")
COOKIE = "cache-real-cluster-cookie-0123456789"


async def test_invalidation_between_two_os_processes_and_a_sigkill(tmp_path: Path) -> None:
    async with open_node("a@127.0.0.1", cookie=COOKIE, port=0, watchdog_threshold=None) as node:

        async def body() -> None:
            await PubSub.start_link("ps")
            await Cache.start_link("c", pubsub="ps")
            cache = lookup("c")
            subscribe("ps", cache.topic)  # to hear b's writes as the owner does
            monitor_nodes(True)
            async with os_nodes(tmp_path) as nodes:
                with trio.fail_after(30):
                    child = await nodes.start(
                        "b@127.0.0.1",
                        CACHE_NODE,
                        "b@127.0.0.1",
                        COOKIE,
                        listen_address(),
                        parse=parse_text,
                    )
                    line = await child.expect(lambda line: True)  # its first line
                    assert line.startswith("READY"), line
                    await drive(cache, child)

        await node.run(body)


async def drive(cache: Cache, child: OSNode) -> None:
    ctl = ("ctl", "b@127.0.0.1")
    await receive(lambda m: isinstance(m, NodeUp) and m.node == "b@127.0.0.1")
    assert await call(ctl, ("watch", self_pid()))
    assert await receive() == "watching"

    # The PubSub shards find each other through pg: write until b hears.
    n = 0
    while True:
        n += 1
        key = ("probe", n)
        await call(ctl, ("fill", key, "old"))
        cache.put(key, "new")
        try:
            msg = await receive(lambda m: isinstance(m, tuple) and m[0] == "dropped", timeout=0.5)
        except trio.TooSlowError:
            continue
        assert msg == ("dropped", key, False)
        break

    # a writes: b drops its copy (the value never travels).
    await call(ctl, ("fill", "user:1", "v1"))
    cache.put("user:1", "v2")
    assert await receive(lambda m: isinstance(m, tuple) and m[0] == "dropped") == (
        "dropped",
        "user:1",
        False,
    )
    assert await call(ctl, ("has", "user:1")) is False

    # b writes: a drops its copy.
    await cache.fetch("user:2", _const("a's"))
    assert await call(ctl, ("put", "user:2", "b's"))
    msg = await receive(lambda m: isinstance(m, Invalidate) and m.keys == ("user:2",))
    assert msg.origin.node == "b@127.0.0.1"
    await cache.sync()
    assert "user:2" not in cache
    assert cache.stats().invalidations_received >= 1

    # b is killed: a's cache may have missed its writes, and starts cold.
    await cache.fetch("user:3", _const("kept?"))
    flushes = cache.stats().flushes
    child.kill()
    await receive(lambda m: isinstance(m, NodeDown) and m.node == "b@127.0.0.1")
    await cache.sync()
    assert cache.stats().flushes == flushes + 1
    assert len(cache) == 0


def _const(value: Any) -> Any:
    async def compute() -> Any:
        return value

    return compute
