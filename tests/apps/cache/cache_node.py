"""A beamlet node with a PubSub and a cache, in its own OS process, for the real-cluster tests.

Usage: ``python cache_node.py NAME COOKIE SEED``. It prints ``READY ADDRESS``
once its cache runs, then serves until its stdin closes. Its ``ctl``
GenServer answers calls from other nodes:

- ``("fill", key, value)``: put ``value`` as a fetch would (a local fill,
  nothing broadcast);
- ``("put", key, value)``: ``cache.put`` (broadcast to the other nodes);
- ``("has", key)``: whether the cache holds ``key``;
- ``("watch", pid)``: from now on, tell ``pid`` of each invalidation from
  another node, once the cache has applied it, with ``("dropped", key, held)``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import trio
from beamlet.actors import GenServer, Pid, receive, send, spawn
from beamlet.apps.cache import Cache, Invalidate, lookup
from beamlet.apps.pubsub import PubSub, subscribe
from beamlet.cluster import listen_address, run


class Control(GenServer):
    async def init(self) -> None:
        self.cache = lookup("c")

    async def handle_call(self, request: Any, caller: Any) -> Any:
        cache = self.cache
        if request[0] == "fill":

            async def value() -> Any:
                return request[2]

            return await cache.fetch(request[1], value)
        if request[0] == "put":
            cache.put(request[1], request[2])
            return True
        if request[0] == "has":
            return request[1] in cache
        if request[0] == "watch":
            spawn(probe, request[1])
            return True
        return None


async def probe(watcher: Pid) -> None:
    cache = lookup("c")
    subscribe("ps", cache.topic)
    send(watcher, "watching")
    while True:
        msg = await receive()
        if isinstance(msg, Invalidate) and msg.origin != cache.pid and msg.keys is not None:
            await cache.sync()  # the owner has applied it too
            for key in msg.keys:
                send(watcher, ("dropped", key, key in cache))


async def main() -> None:
    await PubSub.start_link("ps")
    await Cache.start_link("c", pubsub="ps")
    await Control.start(name="ctl")
    print("READY", listen_address(), flush=True)
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async for _ in stdin:
        pass


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    name, cookie, seed = sys.argv[1:]
    run(main, name=name, cookie=cookie, port=0, seeds=[seed], watchdog_threshold=None)
