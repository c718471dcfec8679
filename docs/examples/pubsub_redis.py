"""PubSub between two nodes that cannot reach each other, through one Redis.

(docs/pubsub.md) The nodes are in one program here but not distributed: no
beamlet connection joins them, only Redis does. Run it with a Redis at
REDIS_URL (default redis://127.0.0.1:6379/0).
"""

import os

import trio
from beamlet.actors import open_node, receive
from beamlet.apps.pubsub import PubSub, broadcast, direct_broadcast, stats, subscribe

REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
got = []
two = trio.Event()


async def serve_chat(name, ready):
    # On every node: the same PubSub name, the same Redis, a node_name of its own.
    await PubSub.start_link("chat", adapter="redis", redis=REDIS, node_name=name)
    ready.set()
    await trio.sleep_forever()


async def reader(ready):
    subscribe("chat", "room:lobby")
    ready.set()
    while True:
        got.append(await receive())
        if len(got) == 2:
            two.set()


async def say():
    broadcast("chat", "room:lobby", ("ann", "hello, everyone"))
    direct_broadcast("web-2", "chat", "room:lobby", ("ann", "hello, web-2"))
    return stats("chat")


async def main():
    async with open_node(name="web-1@paas") as web1, open_node(name="web-2@paas") as web2:
        for node, name in ((web1, "web-1"), (web2, "web-2")):
            ready = trio.Event()
            node.spawn(serve_chat, name, ready)
            await ready.wait()
        ready = trio.Event()
        web2.spawn(reader, ready)
        await ready.wait()
        counters = await web1.run(say)
        with trio.fail_after(5):
            await two.wait()
        print("web-2 got:", got)
        print(
            "web-1: Redis up:", counters["redis_up"], "not published:", counters["redis_send_drops"]
        )


trio.run(main)
