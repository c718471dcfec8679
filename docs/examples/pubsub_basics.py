"""PubSub on two nodes of a simulated cluster: the broadcasts, a dispatcher, the bound.

(docs/pubsub.md) Readers append what they receive to a list of this program,
so that the example can print it; a real subscriber would act on it.
"""

import trio
import trio.testing
from beamlet.actors import receive, send
from beamlet.apps.pubsub import (
    PubSub,
    broadcast,
    direct_broadcast,
    dispatcher,
    local_broadcast,
    stats,
    subscribe,
)
from beamlet.cluster import pg
from beamlet.cluster.simulation import simulated_cluster

got = {"a": [], "b": []}


async def serve_news(ready):
    await PubSub.start_link("news")  # on every node, with the same name
    ready.set()
    await trio.sleep_forever()


async def reader(short, ready):
    subscribe("news", "sport")
    ready.set()
    while True:
        got[short].append(await receive())


@dispatcher("example.shouting")  # registered on every node: it crosses by name
def shouting(entries, from_pid, message):
    for pid, _metadata in entries:
        if pid != from_pid:
            send(pid, message.upper())


async def publish():
    broadcast("news", "sport", "goal!")  # every node
    local_broadcast("news", "sport", "here only")  # this node
    direct_broadcast("b@b", "news", "sport", "for b")  # node b only
    broadcast("news", "sport", "shout", dispatcher=shouting)
    try:
        broadcast("news", "sport", object())  # cannot cross to b: refused, sent to nobody
    except TypeError as exc:
        print("refused:", exc)


async def slow_subscriber():
    # At most 100 messages wait for this subscriber; the rest are dropped
    # for it and counted. The publisher never waits either way.
    subscribe("news", "firehose", max_pending=100)
    for i in range(1000):
        broadcast("news", "firehose", i)
    return stats("news")["slow_subscriber_drops"]


async def shards_joined():
    return len(pg.members(("beamlet.pubsub", "news", 0)))


async def main():
    async with simulated_cluster(["a", "b"]) as sim:
        for short in "ab":
            ready = trio.Event()
            sim.spawn(short, serve_news, ready)
            await ready.wait()
            ready = trio.Event()
            sim.spawn(short, reader, short, ready)
            await ready.wait()
        while await sim.run("a", shards_joined) < 2:  # noqa: ASYNC110 - until b joined
            await trio.sleep(0.1)

        await sim.run("a", publish)
        await trio.sleep(1)
        print("a got:", got["a"])  # ['goal!', 'here only', 'SHOUT']
        print("b got:", got["b"])  # ['goal!', 'for b', 'SHOUT']
        assert got == {"a": ["goal!", "here only", "SHOUT"], "b": ["goal!", "for b", "SHOUT"]}
        print("dropped for the slow subscriber:", await sim.run("a", slow_subscriber))


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
